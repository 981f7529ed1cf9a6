"""/v1/admin: queues and workers, every user's jobs with cancel and resend, user counts."""
from __future__ import annotations

from datetime import timedelta

import pytest

from shared.models import utcnow
from tests.factories import load_job, make_job
from tests.support import WorkerProcess, create_user, wait_until

ADMIN_READS = ["/v1/admin/queues", "/v1/admin/jobs", "/v1/admin/users/stats", "/v1/admin/backups"]


@pytest.mark.parametrize("path", ADMIN_READS)
def test_admin_endpoints_refuse_users_and_strangers(client, headers, path):
    assert client.get(path).status_code == 401
    refused = client.get(path, headers=headers)
    assert refused.status_code == 403 and refused.json["code"] == "forbidden"


def test_admin_actions_refuse_users(client, user, headers):
    job = make_job(user)
    for action in ("cancel", "resend"):
        assert client.post(f"/v1/admin/jobs/{job.id}/{action}", headers=headers).status_code == 403
    assert load_job(job.id).status == "queued"


def test_every_users_jobs_filtered_by_status_type_and_user(client, user, other_user, admin_headers):
    mine = make_job(user, created_at=utcnow() - timedelta(seconds=3))
    theirs = make_job(other_user, created_at=utcnow() - timedelta(seconds=2))
    done = make_job(other_user, status="succeeded", created_at=utcnow() - timedelta(seconds=1))
    digest = make_job(user, type="report.daily_digest", params={})

    listed = client.get("/v1/admin/jobs", headers=admin_headers).json
    assert [j["id"] for j in listed["items"]] == [str(digest.id), str(done.id), str(theirs.id), str(mine.id)]
    assert listed["items"][1]["user_email"] == other_user.email
    assert listed["items"][0]["queue"] == "reports"

    def ids(**query):
        answer = client.get("/v1/admin/jobs", query_string=query, headers=admin_headers)
        assert answer.status_code == 200, answer.json
        return [j["id"] for j in answer.json["items"]]

    assert ids(user=other_user.email.upper()) == [str(done.id), str(theirs.id)]
    assert ids(user=str(user.id)) == [str(digest.id), str(mine.id)]
    assert ids(status="succeeded") == [str(done.id)]
    assert ids(type="report.daily_digest") == [str(digest.id)]
    assert ids(user="nobody@example.com") == []
    assert ids(limit=2) == [str(digest.id), str(done.id)]
    bad = client.get("/v1/admin/jobs?status=lost", headers=admin_headers)
    assert bad.status_code == 422 and "status" in bad.json["errors"]


def test_an_admin_cancels_any_users_queued_job_once(client, other_user, admin_headers):
    job = make_job(other_user)
    canceled = client.post(f"/v1/admin/jobs/{job.id}/cancel", headers=admin_headers)
    assert canceled.status_code == 200, canceled.json
    assert canceled.json["status"] == "canceled" and canceled.json["user_email"] == other_user.email
    again = client.post(f"/v1/admin/jobs/{job.id}/cancel", headers=admin_headers)
    assert again.status_code == 409 and again.json["code"] == "job_finished"
    missing = client.post("/v1/admin/jobs/00000000-0000-0000-0000-000000000000/cancel", headers=admin_headers)
    assert missing.status_code == 404


def test_resend_gives_a_queued_job_a_new_message_and_refuses_finished_ones(client, other_user, admin_headers):
    job = make_job(other_user)
    resent = client.post(f"/v1/admin/jobs/{job.id}/resend", headers=admin_headers)
    assert resent.status_code == 202, resent.json
    row = load_job(job.id)
    assert row.run_token != job.run_token and row.enqueued_at is not None  # the old message is stale now

    finished = make_job(other_user, status="failed")
    refused = client.post(f"/v1/admin/jobs/{finished.id}/resend", headers=admin_headers)
    assert refused.status_code == 409 and refused.json["code"] == "job_not_queued"
    assert load_job(finished.id).run_token == finished.run_token


def test_queues_show_queued_jobs_and_their_oldest_wait(client, user, admin_headers):
    make_job(user, enqueued_at=utcnow() - timedelta(seconds=90))
    make_job(user, enqueued_at=utcnow() - timedelta(seconds=5))
    make_job(user, type="report.daily_digest", params={}, enqueued_at=utcnow() + timedelta(minutes=5))  # backing off

    answer = client.get("/v1/admin/queues", headers=admin_headers)

    assert answer.status_code == 200, answer.json
    queues = {q["name"]: q for q in answer.json["queues"]}
    assert set(queues) == {"interactive", "sync", "reports", "maintenance"}
    assert queues["interactive"]["queued_jobs"] == 2
    assert 89 <= queues["interactive"]["oldest_wait_seconds"] < 200
    assert queues["reports"]["queued_jobs"] == 0 and queues["reports"]["oldest_wait_seconds"] is None
    assert all(isinstance(q["depth"], int) for q in queues.values())  # from the broker, which answers


def test_user_counts_leave_out_the_system_user_and_count_recent_activity(client, admin, admin_headers):
    idle = create_user("idle@example.com")
    busy = create_user("busy@example.com")
    make_job(busy)
    make_job(idle, created_at=utcnow() - timedelta(days=3))
    login = client.post("/v1/auth/login", json={"email": admin.email, "password": "correct horse battery"})
    assert login.status_code == 200
    from shared import db
    from shared.schedules import system_user

    with db.session_scope() as session:
        system = system_user(session)
    make_job(system, type="ops.backup", params={})

    stats = client.get("/v1/admin/users/stats", headers=admin_headers).json

    assert stats == {"total": 3, "active_last_day": 2}  # admin (logged in) and busy (a job)


@pytest.mark.worker
def test_workers_online_come_from_their_heartbeats(client, admin_headers):
    worker = WorkerProcess(env={"WORKER_HEARTBEAT_SECONDS": "1"}, queues="sync,reports").start()
    try:
        def listed():
            workers = client.get("/v1/admin/queues", headers=admin_headers).json["workers"]
            return [w for w in workers if w["hostname"] == worker.hostname]

        [online] = wait_until(listed, timeout=30, message="the worker's heartbeat")
        assert online["queues"] == ["reports", "sync"] and online["concurrency"] == 2
        first_seen = online["seen_at"]
        wait_until(lambda: listed() and listed()[0]["seen_at"] > first_seen, timeout=15, message="a second beat")
    finally:
        worker.stop()
    assert listed() == []  # a warm shutdown removes the key at once


def test_a_worker_that_stops_beating_drops_out_after_its_ttl(client, admin_headers):
    from shared import heartbeats

    heartbeats.write(hostname="gone@test", queues=["interactive"], concurrency=1, started_at=0, interval=1)
    names = lambda: [w["hostname"] for w in client.get("/v1/admin/queues", headers=admin_headers).json["workers"]]  # noqa: E731
    assert "gone@test" in names()
    wait_until(lambda: "gone@test" not in names(), timeout=10, message="the heartbeat to expire")


def test_admin_reads_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/v1/admin/queues", "/v1/admin/jobs", "/v1/admin/jobs/{job_id}/cancel",
                 "/v1/admin/jobs/{job_id}/resend", "/v1/admin/users/stats", "/v1/admin/backups"):
        assert path in paths, path
