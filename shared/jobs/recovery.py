"""The sweeper: it resends lost messages and requeues or fails the jobs of dead workers."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shared.db import is_postgres
from shared.jobs.registry import REGISTRY
from shared.jobs.states import QUEUED, RUNNING
from shared.jobs.transitions import fail_job, resend_lost
from shared.models import Job, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)


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
        if resend_lost(session=session, job_id=job_id, run_token=old_token, type_name=type_name):
            report.resent += 1

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
            if resend_lost(session=session, job_id=job_id, run_token=old_token, type_name=type_name, requeue=True):
                report.requeued_orphans += 1
                log.warning("job %s orphaned in running; requeued", job_id)
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
