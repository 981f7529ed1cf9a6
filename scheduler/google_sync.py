"""The periodic Google sync: a fan-out that submits calendar.sync and mail.sync jobs for
connected accounts whose last sync is older than GOOGLE_SYNC_INTERVAL_MINUTES.

Beat runs it every minute; each job is sent with a random delay of up to a tenth of the
interval, so accounts connected together do not all hit Google in the same second.
Coalescing (shared.jobs) makes a second fan-out, or a user's own submit, harmless.

Beside it, every 5 minutes, the consents whose link nobody completed within
10 minutes are revoked at Google and dropped (shared.google_oauth.drop_expired_links).
"""
from __future__ import annotations

import logging
import random
from datetime import timedelta

from sqlalchemy import or_, select

from shared.celery_app import app
from shared.db import session_scope
from shared.google_oauth import configured, drop_expired_links, missing_scopes
from shared.jobs import JobError, dispatch, submit_job
from shared.jobtypes import get_job_type
from shared.models import GoogleIntegration, User, utcnow
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

SYNCED_AT = {"calendar.sync": GoogleIntegration.calendar_synced_at, "mail.sync": GoogleIntegration.mail_synced_at}


def fan_out(*, session, settings: Settings, now=None, batch: int = 500) -> dict:
    """Submit the due syncs of connected accounts; returns how many were queued per type."""
    now = now or utcnow()
    due_before = now - timedelta(minutes=settings.google_sync_interval_minutes)
    jitter = settings.google_sync_interval_minutes * 60 / 10
    queued: dict[str, int] = {}
    for type_name, synced_at in SYNCED_AT.items():
        rows = session.execute(
            select(User, GoogleIntegration.scopes).join(GoogleIntegration, GoogleIntegration.user_id == User.id)
            .where(GoogleIntegration.status == "connected", or_(synced_at.is_(None), synced_at < due_before))
            .order_by(synced_at.asc().nullsfirst()).limit(batch)
        ).all()
        for user, scopes in rows:
            if missing_scopes(scopes, get_job_type(type_name).google_scopes):
                continue  # the user did not grant it: the job could only fail
            try:
                submitted = submit_job(session=session, user=user, type_name=type_name, params={},
                                       settings=settings, internal=True)
            except JobError as exc:  # the user's active-jobs cap: next round
                log.info("periodic %s for %s skipped: %s", type_name, user.id, exc.code)
                continue
            dispatch(session, submitted, countdown=random.uniform(0, jitter))
            session.commit()
            if submitted.created:
                queued[type_name] = queued.get(type_name, 0) + 1
    return queued


@app.task(name="scheduler.google_sync", acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=180)
def google_sync_task() -> dict:
    """Queue the periodic calendar and mail syncs that are due."""
    settings = get_settings()
    if not configured(settings):
        return {}
    with session_scope() as session:
        return fan_out(session=session, settings=settings)


@app.task(name="scheduler.google_expired_links", acks_late=True, ignore_result=True, soft_time_limit=120,
          time_limit=180)
def expired_links_task() -> int:
    """Revoke at Google, and drop, the consents nobody completed within 10 minutes."""
    settings = get_settings()
    with session_scope() as session:
        dropped = drop_expired_links(session=session, settings=settings)
    if dropped:
        log.info("dropped %s expired Google links", dropped)
    return dropped
