"""When PostgreSQL or Redis is unreachable: /ready says which, nothing answers 500, and a
job accepted while the broker is down is sent later by the sweeper."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests

from shared import db
from shared.jobs import sweep
from shared.models import utcnow
from tests.factories import load_job
from tests.support import ServerProcess, auth_headers, free_port, wait_until

NOWHERE_DB = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
NOWHERE_REDIS = f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def server_without(request):
    """gunicorn whose database or Redis (the parameter) points at a closed port."""
    env = {
        "database": {"DATABASE_URL": NOWHERE_DB},
        "redis": {"REDIS_URL": NOWHERE_REDIS},
        "rate_limits": {"RATELIMIT_STORAGE_URL": NOWHERE_REDIS, "RATE_LIMIT_ENABLED": "true"},
    }[request.param]
    server = ServerProcess(env=env).start()
    yield server
    server.stop()


@pytest.mark.parametrize("server_without", ["database"], indirect=True)
def test_database_down(server_without, user):
    ready = requests.get(f"{server_without.url}/ready", timeout=15)
    submit = requests.post(f"{server_without.url}/v1/jobs", headers=auth_headers(user), timeout=15,
                           json={"type": "tasks.quick_add", "params": {"text": "buy milk"}})

    assert ready.status_code == 503
    assert ready.json()["code"] == "not_ready"
    assert ready.json()["errors"]["checks"] == {"database": "down", "broker": "ok", "rate_limits": "off"}
    assert submit.status_code == 503
    assert submit.json()["code"] == "unavailable"
    assert submit.headers["Retry-After"]
    # The status page answers, and says so.
    status = requests.get(f"{server_without.url}/v1/status", timeout=15)
    page = requests.get(f"{server_without.url}/status", timeout=15)
    assert status.status_code == 200 and page.status_code == 200
    states = {c["name"]: c["status"] for c in status.json()["components"]}
    assert states["api"] == "down" and states["jobs.interactive"] == "down" and status.json()["status"] == "down"


@pytest.mark.parametrize("server_without", ["redis"], indirect=True)
def test_broker_down_the_job_is_accepted_durably_and_sent_later(server_without, user, settings, worker):
    ready = requests.get(f"{server_without.url}/ready", timeout=15)
    submit = requests.post(f"{server_without.url}/v1/jobs", headers=auth_headers(user), timeout=30,
                           json={"type": "tasks.quick_add", "params": {"text": "buy milk"}})

    assert ready.status_code == 503
    assert ready.json()["errors"]["checks"] == {"database": "ok", "broker": "down", "rate_limits": "off"}
    status = requests.get(f"{server_without.url}/v1/status", timeout=15)
    assert status.status_code == 200 and status.json()["status"] == "down"
    assert submit.status_code == 202, submit.text
    job_id = uuid.UUID(submit.json()["id"])
    assert load_job(job_id).enqueued_at is None  # committed, not sent

    # The broker is back (this process's own): the sweeper's next round delivers it.
    with db.session_scope() as session:
        assert sweep(session=session, settings=settings, now=utcnow() + timedelta(minutes=1)).resent == 1
    wait_until(lambda: load_job(job_id).status == "succeeded", message="the job to run")


@pytest.mark.parametrize("server_without", ["rate_limits"], indirect=True)
def test_an_unreachable_rate_limit_store_is_not_ready(server_without):
    # Limits would otherwise be counted in each process's memory, silently.
    ready = requests.get(f"{server_without.url}/ready", timeout=15)

    assert ready.status_code == 503
    assert ready.json()["errors"]["checks"] == {"database": "ok", "broker": "ok", "rate_limits": "down"}


def test_ready_reports_the_rate_limit_store(monkeypatch):
    from api import create_app
    from shared.settings import Settings

    monkeypatch.setenv("RATE_LIMIT_ENABLED", "true")
    assert create_app(Settings.from_env()).test_client().get("/ready").json["checks"] == {
        "database": "ok", "broker": "ok", "rate_limits": "ok"}
    monkeypatch.setenv("RATELIMIT_STORAGE_URL", "memory://")
    assert create_app(Settings.from_env()).test_client().get("/ready").json["checks"]["rate_limits"] == "memory"
