"""Retention: what we keep only for a while is removed when its time is up."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from shared import artifacts, audit
from shared.jobs import TERMINAL
from shared.models import Artifact, Job, MailMessage, NotificationSend, RefreshToken, WebhookDelivery, utcnow
from shared.settings import Settings, get_settings
from workers.job_runner import JobContext, job_task

NOTIFICATION_RECORD_DAYS = 30


def purge_expired(*, session: Session, settings: Settings, now: datetime) -> dict:
    """Delete what is past its keep-until; returns how many rows (and artifact files) went, by kind."""
    expired_jobs = select(Job.id).where(Job.status.in_(TERMINAL), Job.expires_at < now)
    doomed = session.scalars(
        select(Artifact).where(or_(Artifact.expires_at < now, Artifact.job_id.in_(expired_jobs)))
    ).all()
    # Files go first: a row left by a rolled-back purge then answers 404, never a dangling read.
    files = artifacts.remove_files(settings, doomed)
    removed = {
        "artifacts": session.execute(delete(Artifact).where(Artifact.id.in_([a.id for a in doomed]))).rowcount
        if doomed else 0,
        "artifact_files": files,
        "jobs": session.execute(
            delete(Job).where(Job.status.in_(TERMINAL), Job.expires_at < now).execution_options(synchronize_session=False)
        ).rowcount,
        "mail_messages": 0,
        # A revoked token stays while its login's access tokens could still be presented:
        # it is how the database answers "is this login signed out" (shared.revocation).
        "refresh_tokens": session.execute(
            delete(RefreshToken).where(or_(
                RefreshToken.expires_at < now,
                RefreshToken.revoked_at < now - timedelta(minutes=settings.jwt_access_minutes + 1),
            ))
        ).rowcount,
    }
    # Finished pushes and webhook deliveries: kept a month, to answer "did it reach me?".
    sent_before = now - timedelta(days=NOTIFICATION_RECORD_DAYS)
    removed["notification_sends"] = session.execute(delete(NotificationSend).where(
        NotificationSend.status.in_(("sent", "failed", "removed")), NotificationSend.created_at < sent_before)).rowcount
    removed["webhook_deliveries"] = session.execute(delete(WebhookDelivery).where(
        WebhookDelivery.status.in_(("succeeded", "failed")), WebhookDelivery.created_at < sent_before)).rowcount
    if settings.mail_retention_days > 0:
        cutoff = now - timedelta(days=settings.mail_retention_days)
        removed["mail_messages"] = session.execute(delete(MailMessage).where(MailMessage.date < cutoff)).rowcount
    # Audit records past AUDIT_RETENTION_DAYS, behind a checkpoint row that keeps the chain checkable.
    removed["audit_records"] = audit.trim(session, settings=settings, now=now)
    removed["total_rows"] = sum(v for k, v in removed.items() if k != "artifact_files")
    return removed


@job_task("ops.retention")
def retention(ctx: JobContext) -> dict:
    """Apply the retention policy now."""
    return purge_expired(session=ctx.session, settings=get_settings(), now=utcnow())
