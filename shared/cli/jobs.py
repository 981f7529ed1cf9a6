"""Inspecting and steering jobs: `assistant jobs list|show|cancel|resend|sweep`."""
from __future__ import annotations

import json
import uuid

import click
from sqlalchemy import select

from shared import audit
from shared.db import session_scope
from shared.jobs import STATUSES, JobFinished, JobNotQueued, cancel_job, job_to_dict, resend_job, sweep
from shared.models import Job, User
from shared.settings import get_settings


@click.group()
def jobs() -> None:
    """Inspect and steer jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--type", "type_name")
@click.option("--user", "email", help="only this user's jobs")
@click.option("--limit", default=20, show_default=True)
def jobs_list(status: str | None, type_name: str | None, email: str | None, limit: int) -> None:
    """Newest jobs first, one line each."""
    with session_scope() as session:
        query = select(Job, User.email).join(User, User.id == Job.user_id)
        if status:
            query = query.where(Job.status == status)
        if type_name:
            query = query.where(Job.type == type_name)
        if email:
            query = query.where(User.email == email.lower())
        rows = session.execute(query.order_by(Job.created_at.desc()).limit(limit)).all()
        audit.record(session, actor=audit.OPERATOR, action="cli.jobs.list", resource="jobs",
                     subjects=[job.user_id for job, _ in rows], details={"shown": len(rows)})
        for job, owner in rows:
            error = f" {job.error_code}" if job.error_code else ""
            click.echo(
                f"{job.id}  {job.created_at:%Y-%m-%d %H:%M:%S}  {job.status:<9} {job.type:<22} "
                f"attempts={job.attempts} {owner}{error}"
            )


@jobs.command("show")
@click.argument("job_id", type=click.UUID)
def jobs_show(job_id: uuid.UUID) -> None:
    """One job as JSON, with its internal fields."""
    with session_scope() as session:
        job = _job_or_exit(session, job_id)
        audit.record(session, actor=audit.OPERATOR, action="cli.jobs.show", resource=("job", job.id),
                     subjects=[job.user_id])
        data = job_to_dict(job) | {
            "user_id": str(job.user_id),
            "queue": job.queue,
            "run_token": job.run_token,
            "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
            "max_attempts": job.max_attempts,
        }
        click.echo(json.dumps(data, indent=2, default=str))


@jobs.command("cancel")
@click.argument("job_id", type=click.UUID)
def jobs_cancel(job_id: uuid.UUID) -> None:
    """Cancel a queued or running job."""
    with session_scope() as session:
        job = _job_or_exit(session, job_id)
        audit.record(session, actor=audit.OPERATOR, action="cli.jobs.cancel", resource=("job", job.id),
                     subjects=[job.user_id])
        try:
            # The same transition as the api's: the status cache and the long-polls follow.
            cancel_job(session=session, job=job)
        except JobFinished as refused:
            raise click.ClickException(refused.message) from None
    click.echo(f"{job_id} canceled")


@jobs.command("resend")
@click.argument("job_id", type=click.UUID)
def jobs_resend(job_id: uuid.UUID) -> None:
    """Send a queued job's message again (its previous message, if any, becomes stale)."""
    with session_scope() as session:
        job = _job_or_exit(session, job_id)
        audit.record(session, actor=audit.OPERATOR, action="cli.jobs.resend", resource=("job", job.id),
                     subjects=[job.user_id])
        try:
            # Guarded as the admin's: a worker that claimed it meanwhile keeps it.
            sending = resend_job(session=session, job=job)
        except JobNotQueued as refused:
            raise click.ClickException(refused.message) from None
    click.echo("sent" if sending.sent else "broker unreachable; the sweeper will send it")


@jobs.command("sweep")
def jobs_sweep() -> None:
    """Run the sweeper once, now."""
    with session_scope() as session:
        report = sweep(session=session, settings=get_settings())
    click.echo(json.dumps(report.as_dict()))


def _job_or_exit(session, job_id) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    return job
