"""The jobs contract: submit, poll with ETag and long-poll, list, cancel, job types."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import select, update

from api import create_app
from shared import db
from shared.jobs import send_job, status_cache
from shared.models import Job, Task
from tests.factories import load_job, make_job
from tests.support import wait_for_job, wait_until

QUICK_ADD = {"type": "tasks.quick_add", "params": {"text": "call mom tomorrow 5pm #family !high"}}


def submit(client, headers, body=QUICK_ADD, **extra_headers):
    return client.post("/v1/jobs", json=body, headers={**headers, **extra_headers})


# -- submit ----------------------------------------------------------------------------


def test_submit_answers_202_with_location_and_retry_after(client, headers):
    response = submit(client, headers)

    assert response.status_code == 202
    job = response.json
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["ETag"]
    assert job["status"] == "queued"
    assert job["type"] == "tasks.quick_add"
    assert job["params"] == QUICK_ADD["params"]
    assert job["attempts"] == 0 and job["progress"] == 0
    assert set(job) >= {"id", "type", "status", "params", "progress", "progress_message", "result",
                        "error", "attempts", "created_at", "started_at", "finished_at", "expires_at"}


def test_submit_commits_the_row_and_records_that_the_message_was_sent(client, headers):
    job_id = submit(client, headers).json["id"]

    row = load_job(uuid.UUID(job_id))
    assert row.status in ("queued", "running", "succeeded")
    assert row.enqueued_at is not None  # the broker took the message after the commit


@pytest.mark.parametrize(
    "body, field",
    [
        ({"type": "tasks.quick_add", "params": {}}, "text"),
        ({"type": "tasks.quick_add", "params": {"text": ""}}, "text"),
        ({"type": "tasks.quick_add", "params": {"text": 42}}, "text"),
        ({"type": "tasks.quick_add", "params": {"text": "x", "colour": "red"}}, "colour"),
        ({"type": "tasks.quick_add", "params": {"text": "x" * 1001}}, "text"),
    ],
)
def test_params_that_break_the_schema_are_422_naming_the_field(client, headers, body, field):
    response = submit(client, headers, body)

    assert response.status_code == 422
    assert response.json["code"] == "invalid_params"
    assert field in response.json["errors"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"params": {"text": "x"}}, "type"),
        ({"type": "tasks.quick_add", "params": ["x"]}, "params"),
        ({"type": "tasks.quick_add", "params": {"text": "x"}, "extra": 1}, "extra"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(client, headers, body, field):
    response = submit(client, headers, body)

    assert response.status_code == 422
    assert field in response.json["errors"]


def test_unknown_type_is_422(client, headers):
    response = submit(client, headers, {"type": "tasks.teleport", "params": {}})

    assert response.status_code == 422
    assert response.json["code"] == "unknown_job_type"


def test_admin_only_types_do_not_exist_for_users(client, headers, admin_headers):
    body = {"type": "ops.ping", "params": {}}

    assert submit(client, headers, body).json["code"] == "unknown_job_type"
    assert submit(client, admin_headers, body).status_code == 202


def test_submit_needs_a_token(client):
    assert client.post("/v1/jobs", json=QUICK_ADD).status_code == 401


# -- idempotency -----------------------------------------------------------------------


def test_same_idempotency_key_and_body_returns_the_same_job(client, headers):
    first = submit(client, headers, **{"Idempotency-Key": "abc-1"})
    again = submit(client, headers, **{"Idempotency-Key": "abc-1"})

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"]
    with db.session_scope() as session:
        assert session.query(Job).count() == 1


def test_same_idempotency_key_with_another_body_is_409(client, headers):
    submit(client, headers, **{"Idempotency-Key": "abc-2"})
    other = {"type": "tasks.quick_add", "params": {"text": "something else"}}

    response = submit(client, headers, other, **{"Idempotency-Key": "abc-2"})

    assert response.status_code == 409
    assert response.json["code"] == "idempotency_key_reused"


def test_idempotency_keys_are_per_user(client, headers, other_headers):
    mine = submit(client, headers, **{"Idempotency-Key": "shared-key"})
    theirs = submit(client, other_headers, **{"Idempotency-Key": "shared-key"})

    assert theirs.status_code == 202
    assert theirs.json["id"] != mine.json["id"]


def test_concurrent_submissions_with_one_key_make_one_job(app, headers):
    answers = []

    def post():
        with app.test_client() as client:
            answers.append(submit(client, headers, **{"Idempotency-Key": "race"}))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a.status_code for a in answers).count(202) == 1
    assert {a.json["id"] for a in answers if a.status_code in (200, 202)} == {answers[0].json["id"]}
    with db.session_scope() as session:
        assert session.query(Job).count() == 1


def test_overlong_idempotency_key_is_400(client, headers):
    response = submit(client, headers, **{"Idempotency-Key": "k" * 256})

    assert response.status_code == 400
    assert response.json["code"] == "invalid_idempotency_key"


# -- limits ----------------------------------------------------------------------------


def test_active_job_cap_is_429_with_a_clear_code(settings, user, headers):
    client = create_app(settings.replace(max_active_jobs_per_user=2)).test_client()
    make_job(user)
    make_job(user, status="running")
    make_job(user, status="succeeded")  # finished jobs do not count

    response = submit(client, headers)

    assert response.status_code == 429
    assert response.json["code"] == "too_many_active_jobs"
    assert response.headers["Retry-After"]


def test_a_cap_above_what_a_submit_counts_is_still_held_by_the_slots(settings, headers):
    from shared.jobs.submit import COUNT_BOUND

    cap = COUNT_BOUND + 6
    client = create_app(settings.replace(max_active_jobs_per_user=cap)).test_client()
    accepted = [submit(client, headers).status_code for _ in range(cap)]

    refused = submit(client, headers)

    assert accepted == [202] * cap
    assert refused.status_code == 429 and refused.json["code"] == "too_many_active_jobs"
    assert f"You have {cap} jobs" in refused.json["message"]
    with db.session_scope() as session:
        assert session.query(Job).count() == cap


# -- polling ---------------------------------------------------------------------------


def test_get_returns_the_job_with_an_etag_and_304_when_unchanged(client, user, headers):
    job = make_job(user)

    first = client.get(f"/v1/jobs/{job.id}", headers=headers)
    again = client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": first.headers["ETag"]})

    assert first.status_code == 200
    assert first.json["id"] == str(job.id)
    assert again.status_code == 304
    assert again.data == b""


def test_etag_changes_when_the_job_changes(client, user, headers):
    job = make_job(user)
    etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]
    with db.session_scope() as session:
        session.get(Job, job.id).progress = 40
        status_cache.track(session, [job.id])

    response = client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 200
    assert response.json["progress"] == 40
    assert response.headers["ETag"] != etag


def test_unknown_job_is_404(client, headers):
    response = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=headers)

    assert response.status_code == 404
    assert response.json["code"] == "not_found"


def test_wait_over_30_seconds_is_422(client, user, headers):
    job = make_job(user)

    response = client.get(f"/v1/jobs/{job.id}?wait=31", headers=headers)

    assert response.status_code == 422
    assert "wait" in response.json["errors"]


def test_wait_on_an_unchanging_job_returns_after_the_wait(client, user, headers):
    job = make_job(user)  # never sent: nothing will change it
    etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]

    started = time.monotonic()
    response = client.get(f"/v1/jobs/{job.id}?wait=1", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 304
    assert 0.9 <= time.monotonic() - started < 5


def test_wait_returns_as_soon_as_the_job_changes(client, user, headers):
    job = make_job(user)
    etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]

    def change_it_soon():
        time.sleep(0.5)
        with db.session_scope() as session:
            session.get(Job, job.id).progress_message = "reading your calendar"
            status_cache.track(session, [job.id])  # as every writer of a job does (its commit wakes the polls)

    threading.Thread(target=change_it_soon).start()
    started = time.monotonic()
    response = client.get(f"/v1/jobs/{job.id}?wait=20", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 200
    assert response.json["progress_message"] == "reading your calendar"
    assert time.monotonic() - started < 5


def test_wait_answers_at_once_when_the_client_is_behind(client, user, headers):
    job = make_job(user)

    started = time.monotonic()
    response = client.get(f"/v1/jobs/{job.id}?wait=20", headers={**headers, "If-None-Match": '"stale"'})

    assert response.status_code == 200
    assert time.monotonic() - started < 2


@pytest.mark.worker
def test_long_poll_wakes_when_a_real_worker_finishes(client, headers, worker):
    job_id = submit(client, headers).json["id"]

    job = wait_for_job(client, job_id, headers, timeout=30)

    assert job["status"] == "succeeded"
    assert job["result"]["task"]["title"] == "call mom"
    assert job["expires_at"] > job["finished_at"]


# -- listing ---------------------------------------------------------------------------


def test_list_is_newest_first_and_paginated(client, user, headers):
    ids = [str(make_job(user).id) for _ in range(5)]

    first = client.get("/v1/jobs?limit=2", headers=headers).json
    second = client.get(f"/v1/jobs?limit=2&cursor={first['next_cursor']}", headers=headers).json
    third = client.get(f"/v1/jobs?limit=2&cursor={second['next_cursor']}", headers=headers).json

    seen = [j["id"] for page in (first, second, third) for j in page["items"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None


def test_list_filters_by_status_and_type(client, user, admin, headers):
    queued = make_job(user)
    make_job(user, status="failed")

    by_status = client.get("/v1/jobs?status=queued", headers=headers).json["items"]
    by_type = client.get("/v1/jobs?type=ops.ping", headers=headers).json["items"]

    assert [j["id"] for j in by_status] == [str(queued.id)]
    assert by_type == []
    assert client.get("/v1/jobs?status=sleeping", headers=headers).status_code == 422


def test_list_shows_only_the_callers_jobs(client, user, other_user, headers):
    make_job(other_user)
    mine = make_job(user)

    items = client.get("/v1/jobs", headers=headers).json["items"]

    assert [j["id"] for j in items] == [str(mine.id)]


# -- cancel ----------------------------------------------------------------------------


@pytest.mark.worker
def test_a_canceled_queued_job_never_runs(client, user, headers, worker):
    job = make_job(user)  # queued, its message not yet delivered

    response = client.post(f"/v1/jobs/{job.id}/cancel", headers=headers)
    with db.session_scope() as session:
        send_job(session, job.id, job.run_token)  # the message arrives after the cancel

    assert response.status_code == 200
    assert response.json["status"] == "canceled"
    time.sleep(1.5)  # give the worker time to (wrongly) run it
    row = load_job(job.id)
    assert row.status == "canceled" and row.attempts == 0 and row.started_at is None
    with db.session_scope() as session:
        assert session.query(Task).count() == 0


@pytest.mark.worker
def test_canceling_a_running_job_stops_it(client, admin_headers, worker):
    job_id = submit(client, admin_headers, {"type": "ops.ping", "params": {"sleep_seconds": 30}}).json["id"]
    wait_until(lambda: load_job(uuid.UUID(job_id)).status == "running", message="the job to start")

    response = client.post(f"/v1/jobs/{job_id}/cancel", headers=admin_headers)

    assert response.status_code == 200
    assert response.json["status"] == "canceled"
    # The worker lets go of it well before the 30 s sleep would have ended.
    wait_until(lambda: not any(t["id"] == load_job(uuid.UUID(job_id)).run_token for t in worker.active_tasks()),
               timeout=10, message="the worker to stop the job")
    row = load_job(uuid.UUID(job_id))
    assert row.status == "canceled" and row.result is None


def test_canceling_a_finished_job_is_409(client, user, headers):
    job = make_job(user, status="succeeded")

    response = client.post(f"/v1/jobs/{job.id}/cancel", headers=headers)

    assert response.status_code == 409
    assert response.json["code"] == "job_finished"


# -- job types -------------------------------------------------------------------------


def test_job_types_lists_what_the_caller_may_submit(client, headers, admin_headers):
    users = {t["type"]: t for t in client.get("/v1/job-types", headers=headers).json["items"]}
    admins = {t["type"] for t in client.get("/v1/job-types", headers=admin_headers).json["items"]}

    quick_add = users["tasks.quick_add"]
    assert quick_add["queue"] == "interactive"
    assert quick_add["params_schema"]["required"] == ["text"]
    assert quick_add["available"] is True and quick_add["admin_only"] is False
    assert "ops.ping" not in users
    assert "ops.ping" in admins


def test_action_types_are_not_submittable_by_anyone(client, admin_headers):
    listed = {t["type"] for t in client.get("/v1/job-types", headers=admin_headers).json["items"]}
    response = submit(client, admin_headers, {"type": "calendar.create_event", "params": {
        "summary": "x", "start": "2026-12-01T10:00:00+00:00", "end": "2026-12-01T11:00:00+00:00"}})

    assert "calendar.create_event" not in listed and "mail.create_draft" not in listed
    assert response.status_code == 422
    assert response.json["code"] == "unknown_job_type"


def test_concurrent_submissions_of_one_user_stop_exactly_at_the_cap(settings, user, headers, worker):
    """No lock serializes one user's submissions: the slots' unique index keeps the cap."""
    app = create_app(settings.replace(max_active_jobs_per_user=5))
    answers: list[int] = []
    start = threading.Barrier(20)

    def post():
        client = app.test_client()
        start.wait()
        answers.append(client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "x"}},
                                   headers=headers).status_code)

    threads = [threading.Thread(target=post) for _ in range(20)]
    with worker.paused():  # a job finished during the burst would free its slot for a sixth submission
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with db.session_scope() as session:
            slots = session.scalars(select(Job.slot).where(Job.user_id == user.id)).all()

    assert sorted(answers) == [202] * 5 + [429] * 15
    assert sorted(slots) == sorted(set(slots)) and len(slots) == 5 and all(0 <= s < 5 for s in slots)


def test_a_finished_job_frees_its_slot(settings, user, headers):
    client = create_app(settings.replace(max_active_jobs_per_user=1)).test_client()
    first = submit(client, headers)
    assert submit(client, headers).status_code == 429

    with db.session_scope() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(first.json["id"])).values(status="succeeded"))

    assert submit(client, headers).status_code == 202


# -- date params are bounded --------------------------------------------------------------


@pytest.mark.parametrize("job_type, params", [
    ("report.weekly_review", {"week_start": "9999-12-31"}),
    ("report.daily_digest", {"date": "9999-12-31"}),
    ("report.daily_digest", {"date": "1999-12-31"}),
    ("report.daily_digest", {"date": "0001-01-01"}),
])
def test_a_date_outside_2000_to_2100_is_a_422_not_a_crash_in_the_worker(client, headers, job_type, params):
    response = client.post("/v1/jobs", json={"type": job_type, "params": params}, headers=headers)

    assert response.status_code == 422, response.json
    [field] = params
    assert response.json["errors"][field] == ["Use a date between 2000-01-01 and 2100-12-31 (YYYY-MM-DD)."]


def test_dates_from_2000_to_2100_are_taken(client, headers):
    for day in ("2000-01-01", "2100-12-31"):
        response = client.post("/v1/jobs", json={"type": "report.daily_digest", "params": {"date": day}},
                               headers=headers)
        assert response.status_code == 202, response.json
