"""Jobs off the happy path: failing one (its push and webhooks commit with the failure), and
the sweeper that resends lost messages and requeues or fails the jobs of dead workers.

Above shared.jobs and shared.notifications, which creates jobs of its own (webhook deliveries).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from shared import notifications
from shared.db import is_postgres
from shared.jobs import ACTIVE, FAILED, QUEUED, RUNNING, _commit_change, _expiry, _swap_token, send_job
from shared.jobtypes import REGISTRY
from shared.models import Job, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)


def fail_job(*, session: Session, job_id, run_token: str, code: str, message: str) -> bool:
    """Mark a running or queued job failed, if `run_token` still owns it; commits."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.run_token == run_token, Job.status.in_(ACTIVE))
        .values(status=FAILED, error_code=code, error_message=message[:2000],
                finished_at=now, updated_at=now, expires_at=_expiry(now))
    )
    # The failure's push and webhooks commit with it (shared.notifications).
    emitted = notifications.job_finished(session=session, job_id=job_id) if result.rowcount else None
    _commit_change(session, job_id, changed=bool(result.rowcount))
    if result.rowcount:
        notifications.kick(session, emitted)
    return bool(result.rowcount)


UNSENT_GRACE_SECONDS = 15  # a submit commits, then sends within milliseconds


@dataclass
class SweepReport:
    resent: int = 0
    requeued_orphans: int = 0
    failed_orphans: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def sweep(*, session: Session, settings: Settings, now: datetime | None = None, batch: int = 500) -> SweepReport:
    """Send queued jobs whose message never reached (or was lost by) the broker, and
    requeue or fail running jobs whose worker died. Safe to run twice at once: every
    change is a compare-and-set on the job's run_token."""
    now = now or utcnow()
    report = SweepReport()

    stuck = (
        select(Job.id, Job.run_token, Job.type)
        .where(
            Job.status == QUEUED,
            or_(
                (Job.enqueued_at.is_(None)) & (Job.created_at < now - timedelta(seconds=UNSENT_GRACE_SECONDS)),
                Job.enqueued_at < now - timedelta(seconds=settings.stuck_queued_seconds),
            ),
        )
        .order_by(Job.created_at)
        .limit(batch)
    )
    for job_id, old_token, type_name in session.execute(_skip_locked(session, stuck)).all():
        new_token = _swap_token(session, job_id, old_token, status=QUEUED)
        if new_token:
            report.resent += 1
            send_job(session, job_id, new_token, type_name=type_name)

    running = (
        select(Job.id, Job.run_token, Job.type, Job.started_at, Job.attempts, Job.max_attempts)
        .where(Job.status == RUNNING)
        .order_by(Job.started_at)
        .limit(batch)
    )
    for job_id, old_token, type_name, started_at, attempts, max_attempts in session.execute(
        _skip_locked(session, running)
    ).all():
        job_type = REGISTRY.get(type_name)
        limit = (job_type.time_limit if job_type else 3600) + settings.orphan_grace_seconds
        if started_at is None or started_at > now - timedelta(seconds=limit):
            continue
        if attempts < max_attempts:
            new_token = _swap_token(session, job_id, old_token, status=RUNNING, requeue=True)
            if new_token:
                report.requeued_orphans += 1
                log.warning("job %s orphaned in running; requeued", job_id)
                send_job(session, job_id, new_token, type_name=type_name)
        elif fail_job(
            session=session, job_id=job_id, run_token=old_token, code="worker_lost",
            message=f"The worker running this job stopped responding ({attempts} attempts).",
        ):
            report.failed_orphans += 1
    session.commit()
    return report


def _skip_locked(session: Session, stmt):
    # On PostgreSQL, two sweepers split the rows instead of waiting on each other.
    return stmt.with_for_update(skip_locked=True) if is_postgres(session) else stmt
