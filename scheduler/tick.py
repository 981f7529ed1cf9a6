"""The per-minute tick: claim the user schedules that are due and queue their jobs.

Any number of beats (or a tick retried after a worker died) may tick at once: a run is
claimed by moving the schedule's next_run_at with a compare-and-set UPDATE, in the same
transaction that inserts its job, so exactly one tick queues it. On PostgreSQL the
candidates are also read FOR UPDATE SKIP LOCKED, so concurrent ticks split the work
instead of racing for it. After downtime a schedule's next run is computed from now, not
from the missed one: a schedule missed for hours runs once, not once per missed minute.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scheduler.reminders import remind, retry_due
from shared.celery_app import app
from shared.db import is_postgres, session_scope
from shared.jobs import JobError, dispatch, submit_job
from shared.models import Job, Schedule, utcnow
from shared.schedules import InvalidCron, next_run, start_run, sync_default_digests, system_user
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    queued: int = 0
    skipped_overlap: int = 0
    refused: int = 0  # the job could not be submitted (type unavailable, too many active jobs)
    lost_race: int = 0  # another tick claimed it first
    defaults_synced: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def tick(*, session: Session, settings: Settings, now: datetime | None = None, batch: int = 500) -> TickReport:
    """Queue every enabled schedule whose next_run_at has come; safe to run concurrently."""
    now = now or utcnow()
    report = TickReport()
    report.defaults_synced = sync_default_digests(session=session, now=now)
    session.commit()

    due = (
        select(Schedule.id, Schedule.next_run_at)
        .where(Schedule.enabled.is_(True), Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at)
        .limit(batch)
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    for schedule_id, due_at in session.execute(due).all():
        _run_due(session, settings, schedule_id, due_at, now, report)
    session.commit()
    return report


def _run_due(session: Session, settings: Settings, schedule_id, due_at: datetime, now: datetime,
             report: TickReport) -> None:
    schedule = session.get(Schedule, schedule_id, populate_existing=True)
    try:
        following = next_run(schedule.cron, schedule.timezone, now)
    except (InvalidCron, KeyError, ValueError) as exc:  # a zone tzdata no longer knows, say
        log.error("schedule %s: unusable cron %r in %s (%s); disabled", schedule_id, schedule.cron,
                  schedule.timezone, exc)
        session.execute(update(Schedule).where(Schedule.id == schedule_id).values(enabled=False, next_run_at=None))
        session.commit()
        return
    claimed = session.execute(
        update(Schedule)
        .where(Schedule.id == schedule_id, Schedule.next_run_at == due_at, Schedule.enabled.is_(True))
        .values(next_run_at=following, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:
        session.rollback()
        report.lost_race += 1
        return
    # The key names this run: even a tick that somehow claimed it twice gets one job.
    outcome = start_run(session=session, settings=settings, schedule=schedule,
                        internal_key=f"schedule:{schedule_id}:{due_at.isoformat()}", now=now)
    dispatch(session, outcome)  # a new job only; it leaves once the run has committed
    session.commit()
    if outcome.skipped:
        report.skipped_overlap += 1
        log.info("schedule %s: previous run %s still going; skipped", schedule_id, outcome.job.id)
    elif outcome.error is not None:
        report.refused += 1
        log.warning("schedule %s: %s not queued: %s", schedule_id, schedule.job_type, outcome.error.code)
    elif outcome.created:
        report.queued += 1


def submit_platform_job(*, session: Session, settings: Settings, type_name: str, period_key: str) -> Job | None:
    """Queue one of the platform's own jobs (backups, retention) as the system user, once per period."""
    owner = system_user(session)
    session.commit()
    try:
        submitted = submit_job(session=session, user=owner, type_name=type_name, params={}, settings=settings,
                               internal_key=f"beat:{type_name}:{period_key}")
    except JobError as exc:
        log.error("beat could not queue %s: %s", type_name, exc.message)
        session.rollback()
        return None
    dispatch(session, submitted)
    session.commit()
    return submitted.job


# -- the tasks beat sends ------------------------------------------------------------------


@app.task(name="scheduler.tick", acks_late=True, ignore_result=True, soft_time_limit=50, time_limit=58)
def tick_task() -> dict:
    """Queue the user schedules that are due, and push the task reminders that are."""
    with session_scope() as session:
        report = tick(session=session, settings=get_settings())
    # Task reminders, and the pushes and webhook attempts that are due again (scheduler.reminders).
    with session_scope() as session:
        reminders = remind(session=session)
        retry_due(session=session)
    if report.queued or report.refused or reminders.sent or reminders.missed:
        log.info("tick: %s, reminders: %s", report.as_dict(), reminders.__dict__)
    return report.as_dict()


@app.task(name="scheduler.platform_job", acks_late=True, ignore_result=True, soft_time_limit=30, time_limit=45)
def platform_job_task(type_name: str, period: str = "day") -> str | None:
    """Queue a platform job (ops.backup, ...) once per `period` ("day" or "hour"), however many beats ask."""
    now = utcnow()
    period_key = now.strftime("%Y-%m-%d" if period == "day" else "%Y-%m-%dT%H")
    with session_scope() as session:
        job = submit_platform_job(session=session, settings=get_settings(), type_name=type_name, period_key=period_key)
        return str(job.id) if job else None
