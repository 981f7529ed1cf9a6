"""The LLM client: the real openai SDK against the fake server, in this process."""
from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from tests.fakes.openai_server import FakeOpenAI
from workers.ai.client import LlmClient
from workers.job_runner import JobFailed

AGENT = "test.client"


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def llm(fake, settings):
    ai = settings.replace(openai_api_key="sk-test-not-secret", openai_base_url=fake.url,
                             openai_model="fake-model", ai_timeout_seconds=1.0, ai_max_retries=2)
    with LlmClient(ai, agent_type=AGENT) as client:
        yield client


def calls(status: str) -> float:
    return REGISTRY.get_sample_value("ai_agent_calls_total", {"agent_type": AGENT, "status": status}) or 0.0


def tokens(kind: str) -> float:
    return REGISTRY.get_sample_value("ai_tokens_total", {"agent_type": AGENT, "kind": kind}) or 0.0


def test_a_reply_carries_tool_calls_and_usage_and_is_counted(fake, llm):
    fake.script(fake.tool_call("list_tasks", {"status": "open"}, prompt_tokens=120, completion_tokens=7))
    before_ok, before_prompt = calls("ok"), tokens("prompt")

    reply = llm.chat([{"role": "user", "content": "what's open?"}], tools=[{"type": "function", "function": {
        "name": "list_tasks", "parameters": {"type": "object", "properties": {}}}}])

    assert [c["name"] for c in reply.tool_calls] == ["list_tasks"]
    assert (reply.prompt_tokens, reply.completion_tokens) == (120, 7)
    assert fake.requests[0]["model"] == "fake-model"
    assert fake.requests[0]["tools"][0]["function"]["name"] == "list_tasks"
    assert calls("ok") == before_ok + 1
    assert tokens("prompt") == before_prompt + 120


def test_a_429_is_retried_after_its_retry_after(fake, llm):
    fake.script(fake.error(429, retry_after=1), fake.reply("hello"))

    reply = llm.chat([{"role": "user", "content": "hi"}])

    assert reply.content == "hello"
    assert len(fake.requests) == 2
    # The SDK's own backoff would be under 0.5 s: the wait is the server's Retry-After.
    assert fake.request_times[1] - fake.request_times[0] >= 0.95


def test_a_500_is_retried_with_backoff(fake, llm):
    fake.script(fake.error(500), fake.error(503), fake.reply("there"))

    assert llm.chat([{"role": "user", "content": "hi"}]).content == "there"
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("step", "code", "status"),
    [
        (FakeOpenAI.error(429, retry_after=0.1), "ai_rate_limited", "rate_limited"),
        (FakeOpenAI.error(500), "ai_unavailable", "unavailable"),
        (FakeOpenAI.slow(1.5), "ai_timeout", "timeout"),
    ],
)
def test_after_the_last_retry_the_failure_has_a_stable_code(fake, llm, step, code, status):
    fake.script(step, step, step)
    before = calls(status)
    started = time.monotonic()

    with pytest.raises(JobFailed) as failure:
        llm.chat([{"role": "user", "content": "hi"}])

    assert failure.value.code == code
    assert len(fake.requests) == 3  # one try and AI_MAX_RETRIES=2 retries, no more
    assert calls(status) == before + 1
    assert "sk-test" not in failure.value.message
    assert time.monotonic() - started < 15


def test_a_refusal_is_not_retried(fake, llm):
    fake.script(fake.error(400), fake.reply("never reached"))

    with pytest.raises(JobFailed) as failure:
        llm.chat([{"role": "user", "content": "hi"}])

    assert failure.value.code == "ai_error"
    assert len(fake.requests) == 1
