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
    env = {"DATABASE_URL": NOWHERE_DB} if request.param == "database" else {"REDIS_URL": NOWHERE_REDIS}
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
    assert ready.json()["errors"]["checks"] == {"database": "down", "broker": "ok"}
    assert submit.status_code == 503
    assert submit.json()["code"] == "unavailable"
    assert submit.headers["Retry-After"]


@pytest.mark.parametrize("server_without", ["redis"], indirect=True)
def test_broker_down_the_job_is_accepted_durably_and_sent_later(server_without, user, settings, worker):
    ready = requests.get(f"{server_without.url}/ready", timeout=15)
    submit = requests.post(f"{server_without.url}/v1/jobs", headers=auth_headers(user), timeout=30,
                           json={"type": "tasks.quick_add", "params": {"text": "buy milk"}})

    assert ready.status_code == 503
    assert ready.json()["errors"]["checks"] == {"database": "ok", "broker": "down"}
    assert submit.status_code == 202, submit.text
    job_id = uuid.UUID(submit.json()["id"])
    assert load_job(job_id).enqueued_at is None  # committed, not sent

    # The broker is back (this process's own): the sweeper's next round delivers it.
    with db.session_scope() as session:
        assert sweep(session=session, settings=settings, now=utcnow() + timedelta(minutes=1)).resent == 1
    wait_until(lambda: load_job(job_id).status == "succeeded", message="the job to run")
