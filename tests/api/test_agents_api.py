"""Agent job types, threads and actions through the api alone (no worker, no AI provider)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from shared import db
from shared.ai import start_of_local_day
from shared.models import AgentThread, AiUsage, Job, ProposedAction, ThreadMessage, utcnow
from tests.factories import make_job

AGENT_TYPES = ("agent.assistant", "agent.plan_day", "mail.draft_reply", "mail.triage")
PARAMS = {"agent.assistant": {"message": "hi"}, "agent.plan_day": {}, "mail.triage": {},
          "mail.draft_reply": {"message_id": "6f1c1f43-3e4b-4b8b-9d1e-7d0f4c5b8a21"}}


def jobs_of(user) -> int:
    with db.session_scope() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.user_id == user.id))


@pytest.fixture
def ai_client(settings):
    from api import create_app

    app = create_app(settings.replace(openai_api_key="sk-test-not-secret", ai_daily_token_budget=500))
    app.config["TESTING"] = True
    return app.test_client()


def test_without_a_key_the_agents_are_listed_unavailable(client, headers):
    items = {t["type"]: t for t in client.get("/v1/job-types", headers=headers).json["items"]}

    assert {name: items[name]["available"] for name in AGENT_TYPES} == dict.fromkeys(AGENT_TYPES, False)
    assert items["tasks.quick_add"]["available"] is True
    assert all(items[name]["queue"] == "interactive" for name in AGENT_TYPES)


@pytest.mark.parametrize("type_name", AGENT_TYPES)
def test_without_a_key_submitting_an_agent_is_503_and_queues_nothing(client, user, headers, type_name):
    response = client.post("/v1/jobs", json={"type": type_name, "params": PARAMS[type_name]}, headers=headers)

    assert response.status_code == 503
    assert response.json["code"] == "ai_not_configured"
    assert jobs_of(user) == 0


def test_with_a_key_the_agents_are_available(ai_client, headers):
    items = {t["type"]: t for t in ai_client.get("/v1/job-types", headers=headers).json["items"]}

    assert all(items[name]["available"] for name in AGENT_TYPES)
    assert "calendar.create_event" not in items and "mail.create_draft" not in items


def test_agent_params_are_validated(ai_client, headers):
    response = ai_client.post("/v1/jobs", json={"type": "agent.assistant", "params": {"thread_id": "nope"}},
                              headers=headers)

    assert response.status_code == 422
    assert set(response.json["errors"]) == {"message", "thread_id"}


def test_the_budget_counts_only_today_in_the_users_timezone_and_only_their_tokens(ai_client, user, other_user,
                                                                                 headers, other_headers):
    with db.session_scope() as session:
        session.add_all([
            AiUsage(user_id=user.id, agent_type="agent.assistant", prompt_tokens=300, completion_tokens=100,
                    created_at=utcnow()),
            AiUsage(user_id=user.id, agent_type="agent.assistant", prompt_tokens=5000, completion_tokens=0,
                    created_at=utcnow() - timedelta(days=2)),
            AiUsage(user_id=other_user.id, agent_type="mail.triage", prompt_tokens=500, completion_tokens=0,
                    created_at=utcnow()),
        ])

    allowed = ai_client.post("/v1/jobs", json={"type": "mail.triage", "params": {}}, headers=headers)
    refused = ai_client.post("/v1/jobs", json={"type": "mail.triage", "params": {}}, headers=other_headers)

    assert allowed.status_code == 202  # 400 of 500 used
    assert refused.status_code == 429 and refused.json["code"] == "ai_budget_exceeded"
    # Retry-After points at the user's next local midnight, not a few seconds away.
    midnight = start_of_local_day(other_user) + timedelta(days=1)
    assert abs(int(refused.headers["Retry-After"]) - (midnight - utcnow()).total_seconds()) < 5
    assert jobs_of(other_user) == 0


def test_an_idempotent_replay_is_not_refused_by_the_budget(ai_client, user, headers):
    first = ai_client.post("/v1/jobs", json={"type": "mail.triage", "params": {}},
                           headers={**headers, "Idempotency-Key": "k1"})
    with db.session_scope() as session:
        session.add(AiUsage(user_id=user.id, agent_type="mail.triage", prompt_tokens=600, completion_tokens=0))

    again = ai_client.post("/v1/jobs", json={"type": "mail.triage", "params": {}},
                           headers={**headers, "Idempotency-Key": "k1"})

    assert again.status_code == 200 and again.json["id"] == first.json["id"]


def make_thread(user, messages: int = 0) -> AgentThread:
    with db.session_scope() as session:
        thread = AgentThread(user_id=user.id, title="t")
        session.add(thread)
        session.flush()
        now = utcnow()
        for i in range(messages):
            session.add(ThreadMessage(thread_id=thread.id, user_id=user.id, role=("user", "assistant")[i % 2],
                                      content=f"m{i}", created_at=now + timedelta(seconds=i)))
    return thread


def test_threads_are_paginated_and_owner_only(client, user, headers, other_user, other_headers):
    threads = [make_thread(user) for _ in range(3)]
    theirs = make_thread(other_user, messages=2)

    first = client.get("/v1/threads?limit=2", headers=headers).json
    second = client.get(f"/v1/threads?limit=2&cursor={first['next_cursor']}", headers=headers).json

    ids = [t["id"] for t in first["items"] + second["items"]]
    assert sorted(ids) == sorted(str(t.id) for t in threads) and second["next_cursor"] is None
    assert client.get(f"/v1/threads/{theirs.id}", headers=headers).status_code == 404
    assert client.get(f"/v1/threads/{theirs.id}", headers=other_headers).json["items"][0]["content"] == "m1"
    assert client.get("/v1/threads/not-a-uuid", headers=headers).status_code == 404


def make_action(user, kind="calendar.create_event", status="proposed") -> ProposedAction:
    job = make_job(user, type="agent.plan_day", params={}, status="succeeded")
    with db.session_scope() as session:
        action = ProposedAction(user_id=user.id, job_id=job.id, kind=kind, status=status, summary="s",
                                params={"summary": "Focus", "start": "2026-12-01T09:00:00+00:00",
                                        "end": "2026-12-01T10:00:00+00:00"})
        session.add(action)
    return action


def test_actions_of_another_user_or_job_are_404(client, user, headers, other_headers):
    action = make_action(user)
    other_job = make_job(user, type="agent.plan_day", params={})

    assert client.post(f"/v1/jobs/{action.job_id}/actions/{action.id}/approve", headers=other_headers).status_code == 404
    assert client.post(f"/v1/jobs/{action.job_id}/actions/{action.id}/reject", headers=other_headers).status_code == 404
    assert client.post(f"/v1/jobs/{other_job.id}/actions/{action.id}/approve", headers=headers).status_code == 404
    assert client.get(f"/v1/jobs/{action.job_id}/actions", headers=other_headers).status_code == 404


def test_rejecting_twice_is_harmless_and_queues_nothing(client, user, headers):
    action = make_action(user)
    url = f"/v1/jobs/{action.job_id}/actions/{action.id}"

    assert client.post(f"{url}/reject", headers=headers).json["status"] == "rejected"
    assert client.post(f"{url}/reject", headers=headers).status_code == 200
    assert client.post(f"{url}/approve", headers=headers).status_code == 409
    assert jobs_of(user) == 1  # only the agent's own job


def test_the_budget_day_starts_at_the_users_local_midnight(ai_client, settings):
    from tests.factories import at
    from tests.support import create_user

    tokyo = create_user("tokyo-budget@example.com", timezone="Asia/Tokyo")
    now = at("2026-11-26T16:00:00")  # 01:00 on the 27th in Tokyo
    with db.session_scope() as session:
        session.add_all([
            AiUsage(user_id=tokyo.id, agent_type="mail.triage", prompt_tokens=7, completion_tokens=0,
                    created_at=at("2026-11-26T14:59:00")),  # 23:59 on the 26th there: yesterday
            AiUsage(user_id=tokyo.id, agent_type="mail.triage", prompt_tokens=11, completion_tokens=2,
                    created_at=at("2026-11-26T15:01:00")),
        ])

    assert start_of_local_day(tokyo, now) == at("2026-11-26T15:00:00")
    with db.session_scope() as session:
        from shared.ai import tokens_used_today

        assert tokens_used_today(session, tokyo, now) == 13


def test_the_daily_token_budget_is_finite_by_default(settings, user, headers, monkeypatch):
    from api import create_app
    from shared.settings import DEFAULT_AI_DAILY_TOKEN_BUDGET, Settings

    monkeypatch.delenv("AI_DAILY_TOKEN_BUDGET", raising=False)
    defaults = Settings.from_env()
    assert 0 < defaults.ai_daily_token_budget == DEFAULT_AI_DAILY_TOKEN_BUDGET
    client = create_app(defaults.replace(openai_api_key="sk-test-not-secret")).test_client()
    with db.session_scope() as session:
        session.add(AiUsage(user_id=user.id, agent_type="agent.assistant", prompt_tokens=DEFAULT_AI_DAILY_TOKEN_BUDGET,
                            completion_tokens=0, created_at=utcnow()))

    response = client.post("/v1/jobs", json={"type": "agent.assistant", "params": {"message": "hi"}}, headers=headers)

    assert response.status_code == 429 and response.json["code"] == "ai_budget_exceeded"
    monkeypatch.setenv("AI_DAILY_TOKEN_BUDGET", "0")  # an operator can still say "no limit"
    assert Settings.from_env().ai_daily_token_budget == 0
