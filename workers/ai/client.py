"""The one LLM client: the official `openai` SDK against any OpenAI-compatible server.

Retries are the SDK's own: it retries timeouts, connection errors, 408/409/429 and 5xx
with exponential backoff (0.5 s doubling to 8 s, minus up to 25 % jitter) and honours
Retry-After (and retry-after-ms) up to two minutes. We use it rather than tenacity
because it already parses those headers and knows which answers are worth retrying; a
second loop around it would only multiply the attempts. Once the SDK gives up, the job
fails with a stable code (our own job-level retries are not used for this, for the same
reason).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import openai

from shared import metrics
from shared import status as service_status
from shared.settings import Settings
from workers.job_runner import JobFailed

log = logging.getLogger(__name__)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

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

    def chat(self, messages: list[dict], *, tools: list[dict] | None = None, max_tokens: int | None = None) -> Reply:
        """One completion; raises JobFailed(ai_rate_limited | ai_timeout | ai_unavailable | ai_error)."""
        kwargs = {"model": self.model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
        if max_tokens:
            kwargs["max_tokens"] = max_tokens
        try:
            response = self._client.chat.completions.create(**kwargs)
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
        except openai.OpenAIError as exc:
            raise self._failed("error", "ai_error", "The AI provider's answer could not be read.", exc)

        metrics.AI_AGENT_CALLS.labels(self.agent_type, "ok").inc()
        service_status.count_call("ai", ok=True)
        usage = response.usage
        prompt = (usage.prompt_tokens or 0) if usage else 0
        completion = (usage.completion_tokens or 0) if usage else 0
        metrics.AI_TOKENS.labels(self.agent_type, "prompt").inc(prompt)
        metrics.AI_TOKENS.labels(self.agent_type, "completion").inc(completion)
        if not response.choices:
            raise JobFailed("ai_error", "The AI provider answered without a choice.")
        choice = response.choices[0]
        message = choice.message
        calls = [
            {"id": call.id, "name": call.function.name, "arguments": call.function.arguments or "{}"}
            for call in (message.tool_calls or [])
            if getattr(call, "function", None) is not None
        ]
        return Reply(content=message.content or "", tool_calls=calls, prompt_tokens=prompt,
                     completion_tokens=completion, finish_reason=choice.finish_reason)

    def _failed(self, status: str, code: str, message: str, exc: Exception) -> JobFailed:
        metrics.AI_AGENT_CALLS.labels(self.agent_type, status).inc()
        service_status.count_call("ai", ok=False)
        # The exception text names the URL and status, never the key.
        log.warning("AI call for %s failed (%s): %s", self.agent_type, code, type(exc).__name__)
        return JobFailed(code, message)
