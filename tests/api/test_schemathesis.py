"""Schemathesis over every operation of /openapi.json: whatever it sends, no answer is a 500.

Bounded for CI: EXAMPLES generated cases per operation (valid and invalid ones, the same
on every run) and a time budget per operation. Valid cases name rows the caller owns, so
they get past the 404 into the writes. The api is configured as in production use, with the fake OpenAI
and Google servers behind it and rate limiting off (a 429 would hide what comes after).
A designed refusal, even a 503 such as ai_not_configured, is an answer; internal_error
is a crash. Jobs the cases submit are queued and never run: every worker stops consuming
meanwhile (a generated account.delete must not erase the caller mid-run).
"""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from shared import db
from shared.celery_app import app as celery_app
from shared.jobtypes import QUEUES
from shared.models import AgentThread, CalendarEvent, MailMessage, ProposedAction, Schedule, utcnow
from tests.factories import make_job, make_task
from tests.fakes.google_server import FakeGoogle
from tests.fakes.openai_server import FakeOpenAI
from tests.support import auth_headers, create_user, environment

EXAMPLES = 40
SECONDS_PER_OPERATION = 20


@pytest.fixture(scope="module")
def configured_env():
    """The environment of a fully configured api: fake Google and OpenAI, encryption keys."""
    google, openai = FakeGoogle().start(), FakeOpenAI().start()
    env = {
        **google.env(),
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "OPENAI_API_KEY": "sk-test-not-secret",
        "OPENAI_BASE_URL": openai.url,
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
        "OAUTH_RETURN_URLS": "https://app.example/google",
        "RATE_LIMIT_ENABLED": "false",
    }
    with environment(env):
        workers = [name for reply in celery_app.control.ping(timeout=1.0) for name in reply]
        for queue in QUEUES:
            if workers:
                celery_app.control.cancel_consumer(queue, destination=workers, reply=True)
        yield
        for queue in QUEUES:
            if workers:
                celery_app.control.add_consumer(queue, destination=workers, reply=True)
    google.stop()
    openai.stop()


@pytest.fixture(scope="module")
def api_schema(configured_env):
    from api import create_app

    app = create_app()
    app.config["TESTING"] = False  # errors go through the handlers, as in production
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.fixture(scope="module")
def caller_user(configured_env):
    """An admin, so the admin-only operations and job types are reached too."""
    return create_user("schemathesis@example.com", role="admin")


@pytest.fixture(scope="module")
def caller(caller_user):
    return auth_headers(caller_user)


@pytest.fixture(scope="module")
def own_rows(caller_user) -> dict[str, str]:
    """Path ids of rows the caller owns, so valid cases reach past the 404 into the writes."""
    user = caller_user
    now = utcnow()
    job = make_job(user, type="agent.plan_day", params={}, status="succeeded")  # finished: ?wait= returns at once
    task = make_task(user, title="water the plants")
    with db.session_scope() as session:
        thread = AgentThread(user_id=user.id, title="chat")
        action = ProposedAction(user_id=user.id, job_id=job.id, kind="calendar.create_event", summary="focus time",
                                params={"summary": "focus", "start": now.isoformat(),
                                        "end": (now + timedelta(hours=1)).isoformat()})
        schedule = Schedule(user_id=user.id, cron="0 8 * * *", timezone="UTC", job_type="tasks.quick_add",
                            params={"text": "stand-up notes"}, next_run_at=now + timedelta(days=1))
        event = CalendarEvent(user_id=user.id, external_id="e1", summary="standup", start_at=now,
                              end_at=now + timedelta(minutes=15))
        message = MailMessage(user_id=user.id, external_id="m1", subject="hello", date=now)
        session.add_all([thread, action, schedule, event, message])
    return {"job_id": str(job.id), "task_id": str(task.id), "thread_id": str(thread.id), "action_id": str(action.id),
            "schedule_id": str(schedule.id), "event_id": str(event.id), "message_id": str(message.id)}


@pytest.fixture(autouse=True)
def _clean_tables(_database):
    yield  # the suite's per-test truncation would delete the caller between operations: once, at the end


@pytest.fixture(scope="module", autouse=True)
def _truncate_once_at_the_end():
    yield
    from tests.support import truncate_all

    truncate_all()


def operation_labels() -> list[str]:
    """Every operation of the document, read when the tests are collected."""
    from api import create_app

    spec = create_app().test_client().get("/openapi.json").json
    return [f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item
            if method in {"get", "post", "put", "patch", "delete"}]


@pytest.mark.parametrize("label", operation_labels())
def test_no_request_is_answered_with_a_crash(api_schema, caller, own_rows, label):
    operation = api_schema.find_operation_by_label(label)
    ids = {name: value for name, value in own_rows.items() if f"{{{name}}}" in operation.path}
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=ids or None),
                      operation.as_strategy(GenerationMode.NEGATIVE))
    time_is_up = time.monotonic() + SECONDS_PER_OPERATION

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    def answer_is_not_a_crash(case):
        if time.monotonic() > time_is_up:
            return  # this operation's time is up: the examples left pass untried
        # The caller's token, whatever the case made of the header (a negative case may drop or mangle it).
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call(headers={**headers, **caller})
        assert response.status_code != 500, (case.as_curl_command(), response.text[:500])
        if response.headers.get("Content-Type", "").startswith("application/json") and response.status_code >= 400:
            assert response.json().get("code") != "internal_error", case.as_curl_command()

    answer_is_not_a_crash()
