"""The worker side of the lifecycle, through a real worker process."""
from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import timedelta

import pytest

from shared import db
from shared.celery_app import app
from shared.jobs import claim_job, send_job
from shared.jobtypes import REGISTRY
from shared.models import Job, Task, utcnow
from tests.factories import load_job, make_job
from tests.support import wait_for_job, wait_until

pytestmark = pytest.mark.worker


def submit(client, headers, type_name, params):
    response = client.post("/v1/jobs", json={"type": type_name, "params": params}, headers=headers)
    assert response.status_code == 202, response.json
    return response.json["id"]


def test_a_permanent_failure_fails_at_once_with_its_code(client, admin_headers, worker):
    job_id = submit(client, admin_headers, "ops.ping", {"fail": "always"})

    job = wait_for_job(client, job_id, admin_headers)

    assert job["status"] == "failed"
    assert job["error"] == {"code": "ping_failed", "message": "Failed on request."}
    assert job["attempts"] == 1
    assert job["finished_at"] and job["expires_at"]


def test_a_retryable_failure_is_retried_then_succeeds(client, admin_headers, worker):
    job_id = submit(client, admin_headers, "ops.ping", {"fail": "first_attempt"})

    job = wait_for_job(client, job_id, admin_headers)

    assert job["status"] == "succeeded"
    assert job["attempts"] == 2
    assert job["result"]["attempt"] == 2
    assert job["error"] is None


def test_progress_is_visible_while_the_job_runs(client, admin_headers, worker):
    job_id = submit(client, admin_headers, "ops.ping", {"sleep_seconds": 3})

    seen = wait_until(
        lambda: (lambda j: j if j["status"] == "running" and j["progress"] > 0 else None)(
            client.get(f"/v1/jobs/{job_id}", headers=admin_headers).json
        ),
        timeout=15,
        message="progress",
    )

    assert "left" in seen["progress_message"]
    assert wait_for_job(client, job_id, admin_headers)["progress"] == 100


def test_text_without_a_title_fails_with_a_stable_code(client, headers, worker):
    job_id = submit(client, headers, "tasks.quick_add", {"text": "#family !high"})

    job = wait_for_job(client, job_id, headers)

    assert job["status"] == "failed"
    assert job["error"]["code"] == "unparseable_text"
    assert job["attempts"] == 1


def test_quick_add_uses_the_users_timezone(client, worker):
    from tests.support import auth_headers, create_user

    tokyo = create_user(f"tokyo-{uuid.uuid4().hex[:6]}@example.com", timezone="Asia/Tokyo")
    headers = auth_headers(tokyo)
    job_id = submit(client, headers, "tasks.quick_add", {"text": "dentist tomorrow 9am"})

    task = wait_for_job(client, job_id, headers)["result"]["task"]

    assert task["due_at"].endswith("T09:00:00+09:00")


def test_a_duplicate_message_of_a_finished_job_does_nothing(client, user, headers, worker):
    job_id = submit(client, headers, "tasks.quick_add", {"text": "buy milk"})
    first = wait_for_job(client, job_id, headers)

    with db.session_scope() as session:  # the broker delivers the same message again
        send_job(session, uuid.UUID(job_id), load_job(uuid.UUID(job_id)).run_token)
    again = wait_until(lambda: load_job(uuid.UUID(job_id)).enqueued_at, message="resend")

    assert again
    wait_until(lambda: not worker.active_tasks(), timeout=10, message="the worker to go idle")
    job = client.get(f"/v1/jobs/{job_id}", headers=headers).json
    assert job["attempts"] == first["attempts"] == 1
    with db.session_scope() as session:
        assert session.query(Task).filter_by(user_id=user.id).count() == 1


def test_a_stale_message_does_not_run_the_job(user, worker):
    job = make_job(user, params={"text": "old message"})
    stale_token = job.run_token
    with db.session_scope() as session:  # the sweeper or a retry moved the job on
        session.get(Job, job.id).run_token = str(uuid.uuid4())

    app.send_task(REGISTRY[job.type].task_name, args=[str(job.id)], task_id=stale_token, queue="interactive")
    wait_until(lambda: worker.active_tasks() == [], timeout=10, message="the worker to go idle")
    time.sleep(1)

    row = load_job(job.id)
    assert row.status == "queued" and row.attempts == 0


def test_sigkill_of_the_process_running_a_job_loses_nothing(client, admin_headers, worker):
    job_id = submit(client, admin_headers, "ops.ping", {"sleep_seconds": 4})
    token = wait_until(lambda: (lambda j: j.run_token if j.status == "running" else None)(load_job(uuid.UUID(job_id))),
                       message="the job to start")
    pid = wait_until(lambda: next((t["worker_pid"] for t in worker.active_tasks() if t["id"] == token), None),
                     message="the pool process of the job")

    os.kill(pid, signal.SIGKILL)  # mid-job, as the OOM killer would

    job = wait_for_job(client, job_id, admin_headers, timeout=60)
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2  # the same message came back and ran it once more
    assert job["result"]["attempt"] == 2


def test_a_job_that_kills_its_worker_every_time_fails_after_max_attempts(admin, worker):
    # Each delivery finds the job running under its own token: a redelivery after a
    # death. At the cap it is failed instead of run again.
    job = make_job(admin, type="ops.ping", params={}, status="running", attempts=3, max_attempts=3,
                   started_at=utcnow() - timedelta(seconds=5))

    with db.session_scope() as session:
        send_job(session, job.id, job.run_token)

    wait_until(lambda: load_job(job.id).status == "failed", timeout=15, message="the job to fail")
    assert load_job(job.id).error_code == "worker_lost"


@pytest.mark.parametrize("status, attempts, expected", [
    ("queued", 0, ("running", 1, None)),                        # a first delivery
    ("queued", 1, ("running", 2, "Attempt 2 of 3")),            # a retry's message
    ("running", 1, ("running", 2, "Attempt 2 of 3")),           # redelivered after its worker died
    ("running", 3, ("failed", 3, None)),                         # ... once too often
    ("canceled", 0, ("canceled", 0, None)),                      # canceled before it started
])
def test_the_claim_of_each_state(user, status, attempts, expected):
    job = make_job(user, status=status, attempts=attempts, max_attempts=3, enqueued_at=utcnow())
    with db.new_session() as session:
        outcome, claimed = claim_job(session=session, job_id=job.id, run_token=job.run_token)

    row = load_job(job.id)
    assert (outcome, row.attempts, row.progress_message if outcome == "running" else None) == expected
    assert row.status == expected[0]
    if outcome == "running":
        assert claimed.id == job.id and claimed.attempts == row.attempts and row.started_at is not None
        assert claimed.params == job.params  # the body gets the whole row from the claim


def test_a_message_with_an_old_token_claims_nothing(user):
    job = make_job(user, enqueued_at=utcnow())
    with db.new_session() as session:
        assert claim_job(session=session, job_id=job.id, run_token=str(uuid.uuid4())) == ("stale", None)
        assert claim_job(session=session, job_id=uuid.uuid4(), run_token=job.run_token) == ("missing", None)
    assert load_job(job.id).status == "queued"


def test_a_registered_type_without_a_task_fails_instead_of_waiting_forever(client, admin_headers, worker):
    # The api's registry knows a type the worker has no task for (a worker older than its
    # api): Celery would drop the message and the sweeper resend it forever.
    from shared.jobtypes import JobType, register

    register(JobType(name="ops.not_on_this_worker", queue="maintenance", summary="A type with no task.",
                     params_schema={"type": "object"}, admin_only=True))
    try:
        job_id = submit(client, admin_headers, "ops.not_on_this_worker", {})
        job = wait_for_job(client, job_id, admin_headers)
    finally:
        REGISTRY.pop("ops.not_on_this_worker")

    assert job["status"] == "failed"
    assert job["error"]["code"] == "no_worker"
    assert "ops.not_on_this_worker" in job["error"]["message"]
    assert job["attempts"] == 0
