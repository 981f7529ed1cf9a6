"""The per-minute tick: each due run queued exactly once, missed runs once, DST-correct digests."""
from __future__ import annotations

import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from scheduler.tick import tick
from shared import db
from shared.models import Job, Schedule, User
from shared.schedules import DIGEST_KIND
from tests.factories import at
from tests.support import ManagedProcess, create_user, wait_until


def make_schedule(user, *, cron="*/5 * * * *", timezone="UTC", next_run_at, job_type="tasks.quick_add",
                  params=None, overlap="skip") -> Schedule:
    with db.session_scope() as session:
        schedule = Schedule(user_id=user.id, cron=cron, timezone=timezone, job_type=job_type,
                            params=params if params is not None else {"text": "water the plants"},
                            overlap=overlap, next_run_at=next_run_at)
        session.add(schedule)
    return schedule


def run_tick(settings, now):
    with db.session_scope() as session:
        return tick(session=session, settings=settings, now=now)


def jobs_of(schedule_or_user, job_type=None) -> list[Job]:
    user_id = getattr(schedule_or_user, "user_id", None) or schedule_or_user.id
    with db.session_scope() as session:
        query = select(Job).where(Job.user_id == user_id)
        if job_type:
            query = query.where(Job.type == job_type)
        return session.scalars(query.order_by(Job.created_at)).all()


def load(schedule) -> Schedule:
    with db.session_scope() as session:
        return session.get(Schedule, schedule.id)


def finish_all_jobs():
    with db.session_scope() as session:
        session.execute(update(Job).values(status="succeeded"))


def hold_all_jobs_running():
    """As if every job were still running (a new run_token: a worker of this suite cannot finish it)."""
    with db.session_scope() as session:
        session.execute(update(Job).values(status="running", run_token="held-by-the-test"))


def test_a_due_schedule_is_queued_as_its_owner_and_moves_on(settings, user):
    now = at("2026-06-01T10:00:30")
    schedule = make_schedule(user, next_run_at=at("2026-06-01T10:00"))

    report = run_tick(settings, now)

    assert report.queued == 1
    [job] = jobs_of(user, "tasks.quick_add")
    assert job.params == {"text": "water the plants"}
    row = load(schedule)
    assert row.last_job_id == job.id and row.last_run_at == now
    assert row.next_run_at == at("2026-06-01T10:05")


def test_a_schedule_not_yet_due_is_left_alone(settings, user):
    schedule = make_schedule(user, next_run_at=at("2026-06-01T10:05"))

    assert run_tick(settings, at("2026-06-01T10:04:59")).queued == 0
    assert load(schedule).next_run_at == at("2026-06-01T10:05")


def test_two_ticks_at_once_queue_each_due_run_once(settings):
    users = [create_user(f"tick-{i}@example.com") for i in range(8)]
    schedules = [make_schedule(u, next_run_at=at("2026-06-01T10:00")) for u in users for _ in range(3)]
    now = at("2026-06-01T10:00:10")
    reports, errors = [], []
    barrier = threading.Barrier(2)

    def ticker():
        barrier.wait()
        try:
            reports.append(run_tick(settings, now))
        except Exception as exc:  # surfaced below: a crash must fail the test, not vanish
            errors.append(exc)

    threads = [threading.Thread(target=ticker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sum(r.queued for r in reports) == len(schedules)
    with db.session_scope() as session:
        per_schedule = session.execute(
            select(Schedule.id, Schedule.last_job_id, Schedule.next_run_at)).all()
        jobs = session.scalars(select(Job).where(Job.type == "tasks.quick_add")).all()
        digests = session.scalar(select(Schedule.id).where(Schedule.system_kind == DIGEST_KIND).limit(1))
    assert len(jobs) == len(schedules)
    assert {j.id for j in jobs} == {row.last_job_id for row in per_schedule if row.last_job_id}
    assert digests is not None  # the defaults were made once, despite both ticks trying


def test_after_three_hours_of_downtime_a_missed_schedule_runs_once(settings, user):
    schedule = make_schedule(user, cron="*/5 * * * *", next_run_at=at("2026-06-01T10:00"))
    back_up = at("2026-06-01T13:02")

    first = run_tick(settings, back_up)
    second = run_tick(settings, back_up + timedelta(seconds=30))

    assert first.queued == 1 and second.queued == 0
    assert len(jobs_of(user, "tasks.quick_add")) == 1
    assert load(schedule).next_run_at == at("2026-06-01T13:05")


def test_overlap_skip_waits_for_the_previous_run_and_allow_does_not(settings, user, other_user):
    skip = make_schedule(user, cron="* * * * *", next_run_at=at("2026-06-01T10:00"), overlap="skip")
    allow = make_schedule(other_user, cron="* * * * *", next_run_at=at("2026-06-01T10:00"), overlap="allow")

    run_tick(settings, at("2026-06-01T10:00:05"))
    hold_all_jobs_running()
    report = run_tick(settings, at("2026-06-01T10:01:05"))

    assert report.skipped_overlap == 1 and report.queued == 1
    assert len(jobs_of(skip)) == 1 and len(jobs_of(allow)) == 2
    assert load(skip).next_run_at == at("2026-06-01T10:02")  # skipped, not stuck

    finish_all_jobs()
    assert run_tick(settings, at("2026-06-01T10:02:05")).queued == 2
    assert len(jobs_of(skip)) == 2


def digest_runs(settings, user, start, until) -> list:
    """Tick at each next_run_at of the user's default digest (and just before it); the UTC times it ran."""
    run_tick(settings, start)  # makes the default schedule (or runs a missed one)
    finish_all_jobs()
    before = len(jobs_of(user, "report.daily_digest"))
    with db.session_scope() as session:
        schedule = session.scalar(select(Schedule).where(Schedule.user_id == user.id,
                                                         Schedule.system_kind == DIGEST_KIND))
    times = []
    while (due := load(schedule).next_run_at) < until:
        assert run_tick(settings, due - timedelta(seconds=1)).queued == 0
        assert run_tick(settings, due).queued == 1
        times.append(due)
        finish_all_jobs()
    assert len(jobs_of(user, "report.daily_digest")) == before + len(times)
    return times


def test_a_berlin_0800_digest_is_0600_utc_in_summer_and_0700_in_winter_across_the_change_overs(settings):
    user = create_user("berlin@example.com", timezone="Europe/Berlin")
    with db.session_scope() as session:
        session.execute(update(User).where(User.id == user.id).values(digest_time="08:00"))

    spring = digest_runs(settings, user, at("2026-03-27T00:00"), at("2026-03-31T00:00"))
    assert spring == [at("2026-03-27T07:00"), at("2026-03-28T07:00"),
                      at("2026-03-29T06:00"),  # the clocks went forward that night
                      at("2026-03-30T06:00")]

    autumn = digest_runs(settings, user, at("2026-10-23T12:00"), at("2026-10-27T00:00"))
    assert autumn == [at("2026-10-24T06:00"),
                      at("2026-10-25T07:00"),  # the clocks went back that night
                      at("2026-10-26T07:00")]


def test_the_default_digest_follows_the_users_digest_time_and_timezone(settings, client, user, headers):
    run_tick(settings, at("2026-01-10T00:00"))
    client.patch("/v1/me", headers=headers, json={"timezone": "America/New_York", "digest_time": "06:30"})

    report = run_tick(settings, at("2026-01-10T00:01"))

    assert report.defaults_synced == 1
    with db.session_scope() as session:
        schedule = session.scalar(select(Schedule).where(Schedule.user_id == user.id))
    assert (schedule.cron, schedule.timezone) == ("30 6 * * *", "America/New_York")
    assert schedule.next_run_at == at("2026-01-10T11:30")  # 06:30 EST


def test_a_system_user_gets_no_digest(settings):
    from shared.schedules import system_user

    with db.session_scope() as session:
        system_user(session)
    run_tick(settings, at("2026-01-10T00:00"))
    with db.session_scope() as session:
        assert session.scalar(select(Schedule.id).limit(1)) is None


class BeatProcess(ManagedProcess):
    name = "beat"

    def __init__(self, schedule_file: str):
        super().__init__({"SCHEDULE_TICK_SECONDS": "1"})
        self.schedule_file = schedule_file

    def command(self):
        return [sys.executable, "-m", "celery", "-A", "scheduler", "beat", "--loglevel", "INFO",
                "--schedule", self.schedule_file]

    def ready(self):
        return "beat: Starting" in self.log_tail()


@pytest.mark.worker
def test_beat_ticks_and_a_worker_runs_the_users_digest(client, user, headers, worker, tmp_path):
    from shared.models import utcnow

    with db.session_scope() as session:
        session.add(Schedule(user_id=user.id, cron="* * * * *", timezone="UTC", job_type="report.daily_digest",
                             params={}, next_run_at=utcnow() - timedelta(seconds=1)))

    beat = BeatProcess(str(tmp_path / "beat-schedule")).start()
    try:
        [job] = wait_until(lambda: [j for j in jobs_of(user) if j.status == "succeeded"], timeout=45,
                           message="the digest to run")
    finally:
        beat.stop()
    assert job.type == "report.daily_digest"
    artifact = client.get(f"/v1/jobs/{job.id}/artifact", headers=headers)
    assert artifact.status_code == 200 and b"Your day" in artifact.data


SQLITE_TICKER = """
import sys, time
from datetime import datetime
from shared.db import session_scope
from shared.settings import get_settings
from scheduler.tick import tick
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # start together
with session_scope() as session:
    report = tick(session=session, settings=get_settings(), now=datetime.fromisoformat(sys.argv[2]))
print(report.queued)
"""


def test_on_the_embedded_sqlite_two_ticking_processes_queue_each_run_once(tmp_path):
    import os
    import subprocess
    import time

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from tests.support import ROOT

    # DATABASE_URL unset: the embedded default, an SQLite file under DATA_DIR.
    env = {**os.environ, "DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL")
    subprocess.run([sys.executable, "-m", "shared.cli", "db", "upgrade"], env=env, check=True, capture_output=True)
    engine = create_engine(f"sqlite:///{tmp_path / 'assistant.db'}")
    with Session(engine) as session, session.begin():
        users = [User(email=f"lite-{i}@example.com", password_hash="x") for i in range(5)]
        session.add_all(users)
        session.flush()
        session.add_all(Schedule(user_id=u.id, cron="*/5 * * * *", timezone="UTC", job_type="tasks.quick_add",
                                 params={"text": "x"}, next_run_at=at("2026-06-01T10:00"))
                        for u in users for _ in range(4))

    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", SQLITE_TICKER, start, "2026-06-01T10:00:30+00:00"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]

    assert all(p.returncode == 0 for p in procs), outputs
    assert sum(int(out.strip().splitlines()[-1]) for out, _ in outputs) == 20
    with Session(engine) as session:
        assert session.query(Job).count() == 20
        assert session.query(Schedule).filter(Schedule.next_run_at == at("2026-06-01T10:05")).count() == 20
        assert session.query(Schedule).filter(Schedule.system_kind == DIGEST_KIND).count() == 5
    engine.dispose()
