"""Each transition of a job, through its one public function, for each kind of caller: the row,
the job-status cache entry and the long-polls' wake-up move together (shared.jobs)."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from click.testing import CliRunner

from shared import db
from shared.cli import main
from shared.jobs import (
    claim_job,
    fail_job,
    job_etag,
    job_to_dict,
    report_progress,
    retry_job,
    status_cache,
    succeed_job,
    sweep,
    wakeups,
)
from shared.models import Job, utcnow
from shared.redis_clients import cache_redis
from shared.settings import get_settings
from tests.factories import load_job, make_job
from tests.support import wait_until


class Watch:
    """A long-poll's view of one job: its cached entry and its wake-ups."""

    def __init__(self, job: Job):
        self.job_id = job.id
        row = load_job(job.id)
        self.etag = job_etag(job_to_dict(row))
        status_cache.refill(row, job_to_dict(row), self.etag)  # a client polled it: cached
        assert status_cache.lookup(job.id).etag == self.etag
        self.pubsub = cache_redis().pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(wakeups.channel(job.id))

    def woken(self) -> bool:
        deadline = time.monotonic() + 1.0
        while (left := deadline - time.monotonic()) > 0:
            # (None also for the subscription's own confirmation: keep reading until the deadline.)
            message = self.pubsub.get_message(timeout=left)
            if message is not None:
                return message["data"] == b"1"
        return False

    def assert_follows_the_row(self, *, woken: bool = True) -> Job:
        """The cache holds the row as committed (a poll with the old ETag gets a 200, not a 304)."""
        row = load_job(self.job_id)
        entry = status_cache.lookup(self.job_id)
        assert entry is not None, "the cache lost the job (or a pending mark was left behind)"
        assert (entry.status, entry.etag, entry.version) == (row.status, job_etag(job_to_dict(row)), row.version)
        assert self.woken() is woken
        self.pubsub.close()
        return row


def cli(*args):
    return CliRunner().invoke(main, list(args))


# -- cancel: the api, the admin and the CLI ---------------------------------------------------

@pytest.mark.parametrize("caller", ["api", "admin", "cli"])
def test_cancel_moves_the_row_the_cache_and_the_long_polls(client, user, headers, admin, admin_headers, caller):
    job = make_job(user)
    watch = Watch(job)

    if caller == "cli":
        result = cli("jobs", "cancel", str(job.id))
        assert result.exit_code == 0, result.output
    else:
        path = f"/v1/{'admin/' if caller == 'admin' else ''}jobs/{job.id}/cancel"
        response = client.post(path, headers=admin_headers if caller == "admin" else headers)
        assert response.status_code == 200, response.json

    row = watch.assert_follows_the_row()
    assert row.status == "canceled" and row.error_code == "canceled"
    # The client holding the old ETag gets the change, not a 304.
    polled = client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": watch.etag})
    assert polled.status_code == 200 and polled.json["status"] == "canceled"


def test_the_cli_cancel_of_a_finished_job_is_one_line(user):
    job = make_job(user, status="succeeded")

    result = cli("jobs", "cancel", str(job.id))

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: The job already finished with status 'succeeded'."]
    assert load_job(job.id).status == "succeeded"


# -- resend: the admin and the CLI, both guarded ----------------------------------------------

@pytest.mark.parametrize("caller", ["admin", "cli"])
def test_resend_gives_a_new_token_and_keeps_the_cache(client, user, admin, admin_headers, caller):
    job = make_job(user)
    watch = Watch(job)

    if caller == "cli":
        assert cli("jobs", "resend", str(job.id)).exit_code == 0
    else:
        assert client.post(f"/v1/admin/jobs/{job.id}/resend", headers=admin_headers).status_code == 202

    row = load_job(job.id)
    assert row.run_token != job.run_token and row.enqueued_at is not None
    # The entry follows the row's version (if the suite's worker is up, once it has run the
    # resent message: a resend changes nothing a client sees, the run that follows does).
    wait_until(lambda: (entry := status_cache.lookup(job.id)) is not None
               and entry.version == load_job(job.id).version, message="the entry to follow the row")
    watch.pubsub.close()


@pytest.mark.parametrize("caller", ["admin", "cli"])
def test_resend_of_a_job_no_longer_queued_is_refused(client, user, admin, admin_headers, caller):
    job = make_job(user, status="running", started_at=utcnow())

    if caller == "cli":
        result = cli("jobs", "resend", str(job.id))
        assert result.exit_code == 1 and "Only queued jobs are resent; this one is running." in result.output
    else:
        response = client.post(f"/v1/admin/jobs/{job.id}/resend", headers=admin_headers)
        assert response.status_code == 409 and response.json["code"] == "job_not_queued"
    assert load_job(job.id).run_token == job.run_token  # the worker that claimed it keeps it


# -- the worker's transitions ------------------------------------------------------------------

def test_claim(user):
    job = make_job(user, enqueued_at=utcnow())
    watch = Watch(job)

    with db.new_session() as session:
        assert claim_job(session=session, job_id=job.id, run_token=job.run_token)[0] == "running"

    assert watch.assert_follows_the_row().status == "running"


def test_progress(user):
    job = make_job(user, status="running", started_at=utcnow())
    watch = Watch(job)

    with db.new_session() as session:
        assert report_progress(session=session, make_session=db.new_session, job_id=job.id,
                               run_token=job.run_token, percent=40, message="halfway")

    assert watch.assert_follows_the_row().progress == 40


def test_succeed(user):
    job = make_job(user, status="running", started_at=utcnow())
    watch = Watch(job)

    with db.new_session() as session:
        assert succeed_job(session=session, job=session.get(Job, job.id), run_token=job.run_token,
                           result={"ok": True})

    row = watch.assert_follows_the_row()
    assert row.status == "succeeded" and row.result == {"ok": True}


def test_retry(user):
    job = make_job(user, status="running", attempts=1, started_at=utcnow())
    watch = Watch(job)

    with db.new_session() as session:
        assert retry_job(session=session, job=session.get(Job, job.id), run_token=job.run_token,
                         code="transient_error", message="try again", delay=3600) == "queued"

    row = watch.assert_follows_the_row()
    assert row.status == "queued" and row.run_token != job.run_token


@pytest.mark.parametrize("caller", ["worker", "sweeper"])
def test_fail(user, caller):
    job = make_job(user, type="ops.ping", params={}, status="running", attempts=3, max_attempts=3,
                   started_at=utcnow() - timedelta(hours=3))
    watch = Watch(job)

    with db.new_session() as session:
        if caller == "worker":
            assert fail_job(session=session, job_id=job.id, run_token=job.run_token, code="boom", message="no")
        else:  # the worker died at its last attempt
            assert sweep(session=session, settings=get_settings()).failed_orphans == 1

    row = watch.assert_follows_the_row()
    assert row.status == "failed" and row.error_code == ("boom" if caller == "worker" else "worker_lost")


def test_sweeper_resend(user):
    job = make_job(user, created_at=utcnow() - timedelta(hours=1), enqueued_at=utcnow() - timedelta(hours=1))
    watch = Watch(job)

    with db.new_session() as session:
        assert sweep(session=session, settings=get_settings()).resent == 1

    assert watch.woken()
    assert load_job(job.id).run_token != job.run_token
    # The entry follows the row (if the suite's worker is up, once it has run the resent message).
    wait_until(lambda: (entry := status_cache.lookup(job.id)) is not None
               and entry.version == load_job(job.id).version, message="the entry to follow the row")
    watch.pubsub.close()


def test_a_transition_that_lost_its_race_changes_nothing(user):
    job = make_job(user, status="canceled")
    watch = Watch(job)

    with db.new_session() as session:
        assert not fail_job(session=session, job_id=job.id, run_token=job.run_token, code="boom", message="no")
        assert claim_job(session=session, job_id=job.id, run_token=str(uuid.uuid4()))[0] == "stale"

    assert watch.assert_follows_the_row(woken=False).status == "canceled"
