"""The sweeper: jobs whose message was never sent or was lost, and jobs orphaned in running."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from shared import db
from shared.jobs import sweep
from shared.jobtypes import REGISTRY
from shared.models import Task, utcnow
from tests.factories import load_job, make_job
from tests.support import BeatProcess, WorkerProcess, wait_until

LONG_AGO = timedelta(hours=1)


def run_sweep(settings, now=None):
    with db.session_scope() as session:
        return sweep(session=session, settings=settings, now=now)


def tasks_of(user) -> int:
    with db.session_scope() as session:
        return session.query(Task).filter_by(user_id=user.id).count()


def test_recently_sent_jobs_are_left_alone(settings, user):
    job = make_job(user, enqueued_at=utcnow())  # waiting in a backlog is normal

    report = run_sweep(settings)

    assert report.resent == 0
    assert load_job(job.id).run_token == job.run_token


@pytest.mark.worker
def test_a_job_committed_but_never_sent_is_delivered(settings, user, worker):
    job = make_job(user, created_at=utcnow() - timedelta(minutes=1))  # the api died before sending

    report = run_sweep(settings)

    assert report.resent == 1
    wait_until(lambda: load_job(job.id).status == "succeeded", message="the job to run")
    assert tasks_of(user) == 1


@pytest.mark.worker
def test_a_job_whose_message_the_broker_lost_is_delivered(settings, user, worker):
    # Sent an hour ago, never run: the message went down with a Redis that kept nothing.
    job = make_job(user, created_at=utcnow() - LONG_AGO, enqueued_at=utcnow() - LONG_AGO)

    assert run_sweep(settings).resent == 1

    wait_until(lambda: load_job(job.id).status == "succeeded", message="the job to run")
    assert load_job(job.id).attempts == 1
    assert tasks_of(user) == 1


@pytest.mark.worker
def test_an_orphaned_running_job_is_requeued_and_finishes_once(settings, user, worker):
    limit = REGISTRY["tasks.quick_add"].time_limit + settings.orphan_grace_seconds
    job = make_job(user, status="running", attempts=1, started_at=utcnow() - timedelta(seconds=limit + 5))

    report = run_sweep(settings)

    assert report.requeued_orphans == 1
    wait_until(lambda: load_job(job.id).status == "succeeded", message="the job to run")
    assert load_job(job.id).attempts == 2
    assert tasks_of(user) == 1


def test_a_running_job_within_its_time_limit_is_not_an_orphan(settings, user):
    job = make_job(user, status="running", attempts=1, started_at=utcnow() - timedelta(seconds=5))

    report = run_sweep(settings)

    assert report.requeued_orphans == report.failed_orphans == 0
    assert load_job(job.id).status == "running"


def test_an_orphan_out_of_attempts_fails_with_a_clear_code(settings, user):
    job = make_job(user, status="running", attempts=3, max_attempts=3, started_at=utcnow() - LONG_AGO)

    report = run_sweep(settings)

    assert report.failed_orphans == 1
    row = load_job(job.id)
    assert row.status == "failed" and row.error_code == "worker_lost"


def test_two_sweeps_at_once_resend_each_job_once(settings, user):
    jobs = [make_job(user, created_at=utcnow() - LONG_AGO, enqueued_at=utcnow() - LONG_AGO) for _ in range(30)]
    reports = []
    barrier = threading.Barrier(2)

    def sweeper():
        barrier.wait()
        reports.append(run_sweep(settings))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r.resent for r in reports) == len(jobs)
    tokens = {load_job(j.id).run_token for j in jobs}
    assert len(tokens) == len(jobs) and not tokens & {j.run_token for j in jobs}


@pytest.mark.worker
def test_sigkill_of_a_whole_worker_then_sweep_finishes_the_job_once(settings, client, admin_headers, worker):
    with worker.paused():  # the suite's worker also takes `maintenance`: the doomed one must get the job
        doomed = WorkerProcess(queues="maintenance").start()
        job_id = uuid.UUID(client.post("/v1/jobs", json={"type": "ops.ping", "params": {"sleep_seconds": 5}},
                                       headers=admin_headers).json["id"])
        wait_until(lambda: load_job(job_id).status == "running", message="the job to start")

        doomed.kill()  # main process and pool together: nobody is left to requeue the message
        survivor = WorkerProcess(queues="maintenance").start()
        try:
            later = utcnow() + timedelta(seconds=REGISTRY["ops.ping"].time_limit + settings.orphan_grace_seconds + 1)
            assert run_sweep(settings, now=later).requeued_orphans == 1

            wait_until(lambda: load_job(job_id).status == "succeeded", timeout=30, message="the job to finish")
            assert load_job(job_id).attempts == 2
        finally:
            survivor.stop()


@pytest.mark.worker
def test_beat_runs_the_sweeper_on_its_own(user, worker):
    job = make_job(user, created_at=utcnow() - timedelta(minutes=1))  # never sent

    beat = BeatProcess(env={"SWEEP_INTERVAL_SECONDS": "1"}).start()
    try:
        wait_until(lambda: load_job(job.id).status == "succeeded", timeout=30, message="beat's sweep")
    finally:
        beat.stop()
    assert tasks_of(user) == 1
