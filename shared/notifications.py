"""What happened that a user (their devices) or an integrator (their webhooks) should hear of.

Producers (the reminder tick, a finished job, a proposed action, a lost Google grant) call
`emit` inside their own transaction: it writes one send record per device and one delivery
per subscribed webhook, keyed by the event, so a producer that runs twice (two beats, a
retried job) writes nothing new. Before their commit they call `kick`, which asks a worker
to deliver once the commit is done (shared.jobs.outbox); a lost kick, a retry whose time came and a dead worker's claim are picked up
by the tick (`due_sends`, `due_deliveries`, called from scheduler.reminders).
Delivery itself lives in workers/ (FCM, Web Push) and never here.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared import metrics
from shared.db import is_postgres
from shared.models import Device, NotificationSend, Webhook, WebhookDelivery, utcnow
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

PLATFORMS = ("fcm", "webpush")
WEBHOOK_EVENTS = ("job.succeeded", "job.failed", "task.reminder", "action.proposed")
DELIVER_TASK = "notify.deliver"
DELIVERY_JOB_TYPE = "webhooks.deliver"
KICK_BATCH = 20  # sends per deliver message: each is one HTTP call of at most PUSH_HTTP_TIMEOUT


@dataclass
class Emitted:
    """What `emit` wrote (not yet committed): `kick` it before the commit."""

    send_ids: list[str] = field(default_factory=list)
    delivery_jobs: list = field(default_factory=list)  # shared.jobs.Submitted of webhooks.deliver

    def __bool__(self) -> bool:
        return bool(self.send_ids or self.delivery_jobs)

    def __iadd__(self, other: "Emitted") -> "Emitted":
        self.send_ids += other.send_ids
        self.delivery_jobs += other.delivery_jobs
        return self


def refresh_targets(*, session: Session, user_ids) -> None:
    """Set users.has_notification_targets from the devices and webhooks the users have now, in the
    caller's transaction (call it after adding, moving or removing one)."""
    from shared.models import User

    user_ids = [user_id for user_id in dict.fromkeys(user_ids) if user_id is not None]
    if not user_ids:
        return
    if is_postgres(session):
        # The row lock first, then the count in a statement of its own (a fresh snapshot under
        # READ COMMITTED): a device added beside a webhook deleted cannot leave the flag false.
        session.execute(select(User.id).where(User.id.in_(user_ids)).order_by(User.id).with_for_update())
    has_device = select(Device.id).where(Device.user_id == User.id).exists()
    has_webhook = select(Webhook.id).where(Webhook.user_id == User.id).exists()
    session.execute(update(User).where(User.id.in_(user_ids))
                    .values(has_notification_targets=or_(has_device, has_webhook))
                    .execution_options(synchronize_session="fetch"))


def token_hash(platform: str, token: str) -> str:
    """A device's identity: the FCM token, or the Web Push endpoint (keys may rotate)."""
    return hashlib.sha256(f"{platform}:{token}".encode()).hexdigest()


def emit(*, session: Session, user_id, event_key: str, title: str, body: str = "", data: dict | None = None,
         push: bool = True, webhook_event: str | None = None, payload: dict | None = None) -> Emitted:
    """Record a push to each of the user's devices and a delivery to each webhook that wants
    `webhook_event`; an event already recorded (same `event_key`) records nothing again."""
    emitted = Emitted()
    now = utcnow()
    data = {key: str(value) for key, value in (data or {}).items() if value is not None}
    channels = configured_channels(get_settings()) if push else ()
    if channels:
        # Devices of a channel this server has no keys for are left alone, not failed each time.
        for device_id, platform in session.execute(
            select(Device.id, Device.platform).where(Device.user_id == user_id, Device.platform.in_(channels))
        ).all():
            send_id = uuid.uuid4()
            inserted = session.execute(_insert_ignoring(session, NotificationSend).values(
                id=send_id, user_id=user_id, device_id=device_id, channel=platform, event_key=event_key[:200],
                title=title[:200], body=body[:1000], data=data, status="pending", attempts=0,
                next_attempt_at=now, created_at=now,
            )).rowcount
            if inserted:
                emitted.send_ids.append(str(send_id))
    if webhook_event:
        for webhook in session.scalars(select(Webhook).where(Webhook.user_id == user_id, Webhook.enabled.is_(True))):
            if webhook_event not in (webhook.events or []):
                continue
            delivery_id = uuid.uuid4()
            inserted = session.execute(_insert_ignoring(session, WebhookDelivery).values(
                id=delivery_id, webhook_id=webhook.id, user_id=user_id, event=webhook_event,
                event_key=event_key[:200], status="pending", attempts=0, next_attempt_at=now, created_at=now,
                payload={"type": webhook_event, "timestamp": now.isoformat(), "data": payload or data},
            )).rowcount
            if inserted:
                emitted.delivery_jobs.append(submit_delivery(session=session, delivery_id=delivery_id,
                                                             user_id=user_id, attempt=0))
    return emitted


def submit_delivery(*, session: Session, delivery_id, user_id, attempt: int):
    """Queue one attempt of a webhook delivery as a webhooks.deliver job (not yet committed).

    The platform's job, not the user's: it runs as the system account (the user neither sees
    nor cancels it, nor spends a slot on it) with the delivery's user named in its params.
    """
    from shared.accounts import system_user
    from shared.jobs.submit import submit_job

    return submit_job(session=session, user=system_user(session), type_name=DELIVERY_JOB_TYPE,
                      params={"delivery_id": str(delivery_id), "user_id": str(user_id)}, settings=get_settings(),
                      internal=True, internal_key=f"webhook:{delivery_id}:{attempt}")


def job_finished(*, session: Session, job_id, succeeded_job=None, targets: bool | None = None) -> Emitted:
    """The push (types that run long, or as the submit asked) and webhooks of a job that just finished.

    `succeeded_job`: the runner's own row of a job it just marked succeeded, and `targets` its
    owner's users.has_notification_targets as the same UPDATE returned it, which saves reads on
    every job's hot path (a failure is read back: fail_job knows only the id).
    """
    from shared.jobtypes import get_job_type
    from shared.models import Job, User

    if succeeded_job is not None:
        job, status = succeeded_job, "succeeded"
        error_code = error_message = None
        if job.type == DELIVERY_JOB_TYPE:
            return Emitted()
        if targets is None:
            targets = session.scalar(select(User.has_notification_targets).where(User.id == job.user_id))
    else:
        job = session.execute(select(Job.id, Job.type, Job.user_id, Job.notify, Job.status, Job.error_code,
                                     Job.error_message, User.has_notification_targets)
                              .join(User, User.id == Job.user_id).where(Job.id == job_id)).one_or_none()
        if job is None:
            return Emitted()
        status, error_code, error_message = job.status, job.error_code, job.error_message
        targets = job.has_notification_targets
    job_type = get_job_type(job.type)
    if job_type is None or job.type == DELIVERY_JOB_TYPE or status not in ("succeeded", "failed"):
        return Emitted()
    if not targets:
        return Emitted()  # no device and no webhook (users.has_notification_targets): nobody to tell
    push = job_type.notify if job.notify is None else job.notify
    succeeded = status == "succeeded"
    name = job_type.name
    emitted = Emitted()
    if succeeded and job_type.toolset:  # only agents (the types with tools) propose actions
        emitted += _actions_proposed(session, job)
    emitted += emit(
        session=session, user_id=job.user_id, event_key=f"job.{status}:{job.id}",
        title=f"{name} finished" if succeeded else f"{name} failed",
        body="Your result is ready." if succeeded else (error_message or "It did not finish.")[:200],
        data={"type": f"job.{status}", "job_id": job.id, "job_type": name},
        push=push, webhook_event=f"job.{status}",
        payload={"job_id": str(job.id), "job_type": name, "status": status,
                 "error": {"code": error_code, "message": error_message} if error_code else None},
    )
    return emitted


def _actions_proposed(session: Session, job) -> Emitted:
    """Each action the agent proposed waits for the user: always pushed (it needs them)."""
    from shared.models import ProposedAction

    emitted = Emitted()
    for action in session.scalars(select(ProposedAction).where(ProposedAction.job_id == job.id,
                                                               ProposedAction.status == "proposed")):
        emitted += emit(
            session=session, user_id=job.user_id, event_key=f"action.proposed:{action.id}",
            title="Approve?", body=action.summary or action.kind,
            data={"type": "action.proposed", "action_id": action.id, "job_id": job.id, "kind": action.kind},
            webhook_event="action.proposed",
            payload={"action_id": str(action.id), "job_id": str(job.id), "kind": action.kind,
                     "summary": action.summary},
        )
    return emitted


def google_reauth_required(*, session: Session, integration_id) -> Emitted:
    """The push that asks the user to connect Google again (once per grant lost)."""
    from shared.models import GoogleIntegration

    integration = session.get(GoogleIntegration, integration_id, populate_existing=True)
    if integration is None:
        return Emitted()
    return emit(
        session=session, user_id=integration.user_id,
        event_key=f"google.reauth_required:{integration.id}:{int(integration.connected_at.timestamp())}",
        title="Reconnect Google", body="Google access was revoked or expired; calendar and mail sync are paused.",
        data={"type": "google.reauth_required"},
    )


def _insert_ignoring(session: Session, model):
    dialect = postgresql if is_postgres(session) else sqlite
    return dialect.insert(model.__table__).on_conflict_do_nothing()


def kick(session: Session, emitted: Emitted) -> None:
    """Ask workers to deliver once the session commits (nothing if it rolls back). A lost push
    kick is found by the tick, a lost delivery job by the sweeper."""
    if not emitted:
        return
    from shared.jobs import outbox  # (the engine's modules, not its package: shared.jobs imports this one)
    from shared.jobs.send import dispatch

    send_ids = list(emitted.send_ids)
    if send_ids:
        outbox.after_commit(session, lambda: _kick_sends(send_ids))
    for submitted in emitted.delivery_jobs:
        dispatch(session, submitted)


def _kick_sends(send_ids: list[str]) -> None:
    from shared.celery_app import app

    try:
        for start in range(0, len(send_ids), KICK_BATCH):
            app.send_task(DELIVER_TASK, args=[send_ids[start:start + KICK_BATCH]], queue="interactive")
    except Exception as exc:  # an unreachable broker
        log.warning("push kick not sent, the tick will deliver: %s", exc)


# -- Web Push keys -----------------------------------------------------------------------


def vapid_private_pem(settings: Settings) -> bytes | None:
    """The VAPID key as PEM: VAPID_PRIVATE_KEY is a file's path, a PEM, or base64url raw key."""
    value = settings.vapid_private_key
    if not value:
        return None
    if "-----BEGIN" in value:
        return value.replace("\\n", "\n").encode()
    from pathlib import Path

    if Path(value).is_file():
        return Path(value).read_bytes()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def vapid_public_key(settings: Settings) -> str | None:
    """The application server key a browser subscribes with (uncompressed point, base64url)."""
    pem = vapid_private_pem(settings)
    if pem is None:
        return None
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pem, password=None)
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def configured_channels(settings: Settings) -> tuple[str, ...]:
    """The push channels this server has keys for."""
    return tuple(name for name, on in (("fcm", settings.fcm_credentials_file),
                                       ("webpush", settings.vapid_private_key)) if on)


# -- what the tick retries ----------------------------------------------------------------

SENDING_STALE_SECONDS = 120  # a claim older than this was a worker that died mid-send
UNKICKED_GRACE_SECONDS = 15  # a fresh send is kicked at once; the tick takes it only if that was lost


def due_sends(*, session: Session, now=None, batch: int = 500) -> list[str]:
    """Sends to (re)try now: retries whose time came, kicks that were lost, claims of dead workers
    (not committed: kick them, then commit)."""
    now = now or utcnow()
    session.execute(
        update(NotificationSend)
        .where(NotificationSend.status == "sending",
               NotificationSend.claimed_at < now - timedelta(seconds=SENDING_STALE_SECONDS))
        # Due since it was claimed (not "now": a tick's clock may run ahead of a worker's).
        .values(status="pending", next_attempt_at=NotificationSend.claimed_at)
    )
    stmt = (
        select(NotificationSend.id)
        .where(NotificationSend.status == "pending", NotificationSend.next_attempt_at <= now,
               or_(NotificationSend.attempts > 0,
                   NotificationSend.created_at < now - timedelta(seconds=UNKICKED_GRACE_SECONDS)))
        .order_by(NotificationSend.next_attempt_at).limit(batch)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return [str(send_id) for send_id in session.scalars(stmt)]  # (not committed: kick them, then commit)


def due_deliveries(*, session: Session, now: datetime | None = None, batch: int = 500) -> Emitted:
    """Queue the next attempt of each delivery whose time came (and hand back dead workers' claims);
    commits what it handed back, not what it queued (kick it, then commit)."""
    now = now or utcnow()
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == "sending",
               WebhookDelivery.next_attempt_at < now - timedelta(seconds=SENDING_STALE_SECONDS))
        .values(status="pending")  # next_attempt_at is when it was claimed: due
    )
    session.commit()
    emitted = Emitted()
    stmt = (
        select(WebhookDelivery.id, WebhookDelivery.user_id, WebhookDelivery.attempts, WebhookDelivery.created_at)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at).limit(batch)
    )
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)  # a second tick takes the other rows
    for row in session.execute(stmt).all():
        try:
            # Each row in its own savepoint: one that fails costs its own place, never the tick.
            with session.begin_nested():
                submitted = _queue_attempt(session, row, now)
        except Exception:
            log.exception("webhook delivery %s (user %s): next attempt not queued", row.id, row.user_id)
            metrics.TICK_ROW_FAILURES.labels("webhook").inc()
            continue
        if submitted is not None:
            emitted.delivery_jobs.append(submitted)
    return emitted


def _queue_attempt(session: Session, row, now: datetime):
    """The job of the delivery's next attempt, or None when the attempt's job ended without sending.

    The key names the attempt: two ticks queue it once, and an attempt whose job exists and
    is still active (the sweeper's business) is replayed, not queued again. A job that ended
    and left the row pending (canceled, or killed before it claimed the row) counts as a
    failed attempt: the row moves on to the next one, or gives up, as a failed call would.
    """
    from shared.jobs.states import ACTIVE

    submitted = submit_delivery(session=session, delivery_id=row.id, user_id=row.user_id, attempt=row.attempts)
    if submitted.created or submitted.job.status in ACTIVE:
        return submitted
    attempts = row.attempts + 1
    delay = timedelta(seconds=next_delay(attempts))
    given_up = row.created_at + GIVE_UP_AFTER < now + delay
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == row.id, WebhookDelivery.status == "pending",
               WebhookDelivery.attempts == row.attempts)
        .values(attempts=attempts, status="failed" if given_up else "pending", next_attempt_at=now + delay,
                error=(f"gave up after {attempts} attempts: " if given_up else "")
                + f"the attempt's job ended {submitted.job.status} without sending")
    )
    if given_up:
        metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
    return None


# The delivery's retry schedule (workers.webhooks follows it after a failed call).
GIVE_UP_AFTER = timedelta(hours=24)
FIRST_RETRY_SECONDS = 30
LONGEST_WAIT_SECONDS = 6 * 3600


def next_delay(attempts: int) -> float:
    """Seconds before attempt `attempts + 1`: 30 s doubling to 6 h, each jittered by up to a fifth."""
    base = min(LONGEST_WAIT_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1))
    return base * random.uniform(0.8, 1.2)
