"""Google jobs: calendar.sync and mail.sync, and the approved writes calendar.create_event
and mail.create_draft. Thin bodies: the work is in workers.google.*."""
from __future__ import annotations

from sqlalchemy import select, update

from shared.jobtypes import get_job_type
from shared.models import GoogleWrite, utcnow
from shared.settings import get_settings
from shared.synced import event_to_dict
from workers.google import calendar, gmail
from workers.google.auth import account_lock, build_service, google_session
from workers.job_runner import JobContext, job_task


def _sync(ctx: JobContext, kind: str) -> dict:
    settings = get_settings()
    ttl = get_job_type(ctx.job.type).time_limit + 30
    with account_lock(ctx, kind, ttl=ttl):
        with google_session(ctx, settings) as (integration, credentials):
            full = bool(ctx.params.get("full"))

            def on_page(pages: int) -> None:
                # The total is unknown up front: creep towards 90 %.
                ctx.progress(min(90, 5 * pages), f"{kind}: {pages} page{'s' if pages > 1 else ''} fetched")
            if kind == "calendar":
                service = build_service("calendar", "v3", credentials, settings)
                stats = calendar.sync_calendar(session=ctx.session, integration=integration, service=service,
                                               settings=settings, full=full, now=utcnow(), on_page=on_page)
                stats["push"] = calendar.ensure_channel(integration=integration, service=service,
                                                        settings=settings, now=utcnow())
            else:
                service = build_service("gmail", "v1", credentials, settings)
                stats = gmail.sync_mail(session=ctx.session, integration=integration, service=service,
                                        settings=settings, full=full, now=utcnow(), on_page=on_page)
        # Committed before the lock is released, so the next sync starts from this one's
        # position. A sync is idempotent, so committing ahead of the job's own success is safe.
        ctx.session.commit()
    return stats


@job_task("calendar.sync")
def calendar_sync(ctx: JobContext) -> dict:
    """Sync the user's primary Google Calendar."""
    return _sync(ctx, "calendar")


@job_task("mail.sync")
def mail_sync(ctx: JobContext) -> dict:
    """Sync the user's recent Gmail metadata."""
    return _sync(ctx, "mail")


def _action_key(ctx: JobContext) -> str:
    """The identity of the write: the approved action, else this job."""
    return ctx.params.get("action_id") or str(ctx.job.id)


@job_task("calendar.create_event")
def create_event(ctx: JobContext) -> dict:
    """Create the approved event; its id derives from the action, so a retry cannot make a second."""
    settings = get_settings()
    with google_session(ctx, settings) as (_integration, credentials):
        service = build_service("calendar", "v3", credentials, settings)
        event = calendar.create_event(session=ctx.session, user_id=ctx.user.id, service=service, settings=settings,
                                      key=_action_key(ctx), params=ctx.params)
    return {"event": event_to_dict(event), "external_id": event.external_id}


def _claim_write(ctx: JobContext, kind: str, key: str) -> GoogleWrite:
    """The record of this write, made and committed before Google is called."""
    with ctx.own_transaction() as session:
        row = session.scalar(select(GoogleWrite).where(GoogleWrite.user_id == ctx.user.id, GoogleWrite.kind == kind,
                                                       GoogleWrite.key == key))
        if row is None:
            row = GoogleWrite(user_id=ctx.user.id, kind=kind, key=key)
            session.add(row)
        return row


def _record_write(ctx: JobContext, row_id, external_id: str) -> None:
    with ctx.own_transaction() as session:
        session.execute(update(GoogleWrite).where(GoogleWrite.id == row_id).values(external_id=external_id))


@job_task("mail.create_draft")
def create_draft(ctx: JobContext) -> dict:
    """Save the approved draft in Gmail, once per action even across retries."""
    settings = get_settings()
    key = _action_key(ctx)
    with google_session(ctx, settings) as (_integration, credentials):
        service = build_service("gmail", "v1", credentials, settings)
        row = _claim_write(ctx, "gmail_draft", key)
        draft_id = row.external_id
        if draft_id is None and ctx.attempt > 1:
            # An earlier attempt may have made it and died (or lost the answer) before recording it.
            draft_id = gmail.find_draft(service, settings, key)
        if draft_id is None:
            draft_id = gmail.create_draft(service=service, settings=settings, key=key, params=ctx.params)
        _record_write(ctx, row.id, draft_id)
    return {"draft_id": draft_id}
