"""The one LLM client: the official `openai` SDK against any OpenAI-compatible server.

Retries are the SDK's own: it retries timeouts, connection errors, 408/409/429 and 5xx
with exponential backoff (0.5 s doubling to 8 s, minus up to 25 % jitter) and honours
Retry-After (and retry-after-ms) up to two minutes. We use it rather than tenacity
because it already parses those headers and knows which answers are worth retrying; a
second loop around it would only multiply the attempts. Once the SDK gives up, the job
fails with a stable code (our own job-level retries are not used for this, for the same
reason).

Every call streams (`chat.completions.stream()`, which also assembles the tool-call deltas),
so free text can reach the user as the model writes it (`on_delta`). Usage comes in the
stream's last chunk (`stream_options.include_usage`); a server that refuses that option is
asked once more without it, and from then on its usage is estimated (characters / 4, marked
estimated), so the token budget still holds.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import openai

from shared import metrics
from shared import status as service_status
from shared.settings import Settings
from workers.job_runner import JobFailed, RetryableJobError

log = logging.getLogger(__name__)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    estimated: bool = False  # some call's usage was estimated (a server without usage in streams)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Reply:
    """One answer of the model: text and/or tool calls, and the tokens it cost."""

    content: str
    tool_calls: list[dict] = field(default_factory=list)  # [{"id", "name", "arguments" (str)}]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    estimated: bool = False  # the tokens are characters / 4: the server sent no usage


class LlmClient:
    """Chat completions with timeouts, the SDK's retries, metrics and stable failure codes."""

    def __init__(self, settings: Settings, *, agent_type: str):
        self.agent_type = agent_type
        self.model = settings.openai_model
        self._client = openai.OpenAI(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url or None,
            timeout=settings.ai_timeout_seconds,
            max_retries=settings.ai_max_retries,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "LlmClient":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def chat(self, messages: list[dict], *, tools: list[dict] | None = None, max_tokens: int | None = None,
             on_delta: Callable[[str], None] | None = None) -> Reply:
        """One streamed completion, its text deltas passed to `on_delta` as they arrive;
        raises JobFailed(ai_rate_limited | ai_timeout | ai_unavailable | ai_error), or
        RetryableJobError(ai_stream_broken) when the answer broke off half-way."""
        kwargs = {"model": self.model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        try:
            try:
                completion = self._stream(kwargs, on_delta, include_usage=self._usage_in_stream)
            except openai.BadRequestError as exc:
                if not self._usage_in_stream or "stream_options" not in str(exc):
                    raise
                # One more request without the option; this client estimates from now on.
                log.info("AI server refuses stream_options; usage will be estimated")
                self._usage_in_stream = False
                completion = self._stream(kwargs, on_delta, include_usage=False)
        except openai.RateLimitError as exc:
            raise self._failed("rate_limited", "ai_rate_limited",
                               "The AI provider kept answering 429 (rate limited); try again later.", exc)
        except openai.APITimeoutError as exc:
            raise self._failed("timeout", "ai_timeout", "The AI provider did not answer in time.", exc)
        except (openai.APIConnectionError, openai.InternalServerError) as exc:
            raise self._failed("unavailable", "ai_unavailable",
                               "The AI provider is unreachable or failing; try again later.", exc)
        except openai.APIStatusError as exc:
            # 400/401/403/404...: a retry would get the same answer (a wrong key or model).
            raise self._failed("error", "ai_error",
                               f"The AI provider refused the request (HTTP {exc.status_code}).", exc)
        except _StreamBroken as exc:
            # The answer stopped half-way: this attempt's text is incomplete, so the attempt
            # fails and the job runs again (its clients are told to drop the partial text).
            metrics.AI_AGENT_CALLS.labels(self.agent_type, "unavailable").inc()
            log.warning("AI stream for %s broke off: %s", self.agent_type, type(exc).__name__)
            raise RetryableJobError("ai_stream_broken", "The AI provider's answer broke off; trying again.")
        except openai.OpenAIError as exc:
            raise self._failed("error", "ai_error", "The AI provider's answer could not be read.", exc)

        metrics.AI_AGENT_CALLS.labels(self.agent_type, "ok").inc()
        service_status.count_call("ai", ok=True)
        if not completion.choices:
            raise JobFailed("ai_error", "The AI provider answered without a choice.")
        choice = completion.choices[0]
        message = choice.message
        calls = [
            {"id": call.id, "name": call.function.name, "arguments": call.function.arguments or "{}"}
            for call in (message.tool_calls or [])
            if getattr(call, "function", None) is not None
        ]
        usage = completion.usage
        estimated = usage is None
        if estimated:
            prompt = _estimate(json.dumps(messages, default=str)) + (_estimate(json.dumps(tools)) if tools else 0)
            completion_tokens = _estimate((message.content or "") + "".join(c["name"] + c["arguments"]
                                                                            for c in calls))
        else:
            prompt, completion_tokens = usage.prompt_tokens or 0, usage.completion_tokens or 0
        metrics.AI_TOKENS.labels(self.agent_type, "prompt").inc(prompt)
        metrics.AI_TOKENS.labels(self.agent_type, "completion").inc(completion_tokens)
        return Reply(content=message.content or "", tool_calls=calls, prompt_tokens=prompt,
                     completion_tokens=completion_tokens, finish_reason=choice.finish_reason, estimated=estimated)

    _usage_in_stream = True  # False once the server refused stream_options

    def _stream(self, kwargs: dict, on_delta: Callable[[str], None] | None, *, include_usage: bool):
        """The whole completion of one streamed request, passing text deltas on as they come."""
        extra = {"stream_options": {"include_usage": True}} if include_usage else {}
        with self._client.chat.completions.stream(**kwargs, **extra) as stream:
            finished = False
            try:
                for event in stream:
                    if event.type == "content.delta" and on_delta is not None and event.delta:
                        on_delta(event.delta)
                    elif event.type == "chunk" and any(c.finish_reason for c in event.chunk.choices):
                        finished = True
            except Exception as exc:
                # The connection dropped mid-answer: the SDK's HTTP library raises its own
                # transport errors here (it retries only before the answer starts).
                if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2"):
                    raise _StreamBroken() from exc
                raise
            if not finished:
                raise _StreamBroken()  # the server closed the stream before the finish reason
            return stream.get_final_completion()

    def _failed(self, status: str, code: str, message: str, exc: Exception) -> JobFailed:
        metrics.AI_AGENT_CALLS.labels(self.agent_type, status).inc()
        service_status.count_call("ai", ok=False)
        # The exception text names the URL and status, never the key.
        log.warning("AI call for %s failed (%s): %s", self.agent_type, code, type(exc).__name__)
        return JobFailed(code, message)


class _StreamBroken(Exception):
    """The stream ended without a finish reason."""


def _estimate(text: str) -> int:
    """Tokens as characters / 4: the rule of thumb for English, rounded up."""
    return (len(text) + 3) // 4
