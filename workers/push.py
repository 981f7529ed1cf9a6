"""Push delivery: FCM HTTP v1 (Android and iOS) and Web Push (VAPID), one send record at a time.

Runs on the interactive queue: a reminder is due now, the queue is served before any bulk
backlog (see shared.celery_app), and a push is one short HTTP call, like the jobs there.

A send is claimed (pending -> sending) by a compare-and-set before the call and marked sent
after it, so a redelivered message or a second kick sends nothing again. The one gap: a worker
killed after the push service accepted and before the commit leaves the row `sending`; the
tick hands it back after SENDING_STALE_SECONDS (shared.notifications), and it is sent a second time. FCM has no
idempotency key; the collapse key (and Web Push's Topic) make the phone show it once anyway.
Tokens and bodies are never logged: a log line names the send and device ids only.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import threading
import uuid
from datetime import timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from shared import metrics
from shared import status as service_status
from shared.celery_app import app
from shared.db import session_scope
from shared.models import Device, NotificationSend, utcnow
from shared.notifications import DELIVER_TASK, KICK_BATCH, refresh_targets, vapid_private_pem
from shared.settings import Settings, get_settings
from shared.webhooks import UnsafeUrl, check_url, pinned_session

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class Retry(Exception):
    def __init__(self, code: int | None, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


class Gone(Exception):
    """The device's token or subscription is dead: the device is removed."""

    def __init__(self, code: int | None, message: str):
        super().__init__(message)
        self.code = code


class Refused(Exception):
    """A failure a retry would not fix."""

    def __init__(self, code: int | None, message: str):
        super().__init__(message)
        self.code = code


# -- FCM HTTP v1 -------------------------------------------------------------------------

_fcm_lock = threading.Lock()
_fcm_session = None  # (credentials file, AuthorizedSession): the token is reused until it expires


def _fcm(settings: Settings):
    """An AuthorizedSession whose token google-auth mints from the file's own token_uri."""
    global _fcm_session
    with _fcm_lock:
        if _fcm_session is None or _fcm_session[0] != settings.fcm_credentials_file:
            from google.auth.transport.requests import AuthorizedSession
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_file(
                settings.fcm_credentials_file, scopes=[FCM_SCOPE])
            _fcm_session = (settings.fcm_credentials_file, AuthorizedSession(credentials))
        return _fcm_session[1]


def _fcm_project(settings: Settings) -> str:
    if settings.fcm_project_id:
        return settings.fcm_project_id
    with open(settings.fcm_credentials_file) as handle:
        return json.load(handle)["project_id"]


def collapse_id(event_key: str) -> str:
    """A short stable id of the event: a duplicate push replaces the first on the device."""
    return base64.urlsafe_b64encode(hashlib.sha256(event_key.encode()).digest()).decode()[:32]


def send_fcm(send: NotificationSend, token: str, settings: Settings) -> int:
    if not settings.fcm_credentials_file:
        raise Refused(None, "fcm_not_configured")
    message = {
        "token": token,
        "notification": {"title": send.title, "body": send.body},
        "data": dict(send.data or {}),
        "android": {"collapse_key": collapse_id(send.event_key)[:20], "priority": "high"},
        "apns": {"headers": {"apns-collapse-id": collapse_id(send.event_key)}},
    }
    url = f"{settings.fcm_api_root}/v1/projects/{_fcm_project(settings)}/messages:send"
    import requests

    try:
        response = _fcm(settings).post(url, json={"message": message}, timeout=settings.push_http_timeout)
    except requests.RequestException as exc:
        raise Retry(None, f"fcm unreachable: {type(exc).__name__}") from None
    except Exception as exc:  # google.auth.exceptions.RefreshError: the token endpoint failed
        raise Retry(None, f"fcm token: {type(exc).__name__}") from None
    if response.status_code == 200:
        return 200
    status, code = _fcm_error(response)
    if code in ("UNREGISTERED", "INVALID_ARGUMENT") or status in ("UNREGISTERED", "INVALID_ARGUMENT"):
        raise Gone(response.status_code, code or status)
    if response.status_code == 429 or response.status_code >= 500:
        raise Retry(response.status_code, code or status or "fcm unavailable", _retry_after(response))
    raise Refused(response.status_code, code or status or "fcm refused")


def _fcm_error(response) -> tuple[str, str]:
    try:
        error = response.json().get("error", {})
    except ValueError:
        return "", ""
    code = next((d.get("errorCode", "") for d in error.get("details", []) if isinstance(d, dict)
                 and d.get("errorCode")), "")
    return str(error.get("status", "")), str(code)


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None


# -- Web Push ----------------------------------------------------------------------------


def send_webpush(send: NotificationSend, token: str, settings: Settings) -> int:
    from py_vapid import Vapid
    from pywebpush import WebPushException, webpush

    pem = vapid_private_pem(settings)
    if pem is None:
        raise Refused(None, "webpush_not_configured")
    subscription = json.loads(token)
    try:
        checked = check_url(subscription["endpoint"], settings)
    except UnsafeUrl:
        raise Gone(None, "unsafe push endpoint") from None
    payload = json.dumps({"title": send.title, "body": send.body, "data": dict(send.data or {})})
    session = pinned_session(checked)
    try:
        response = webpush(
            subscription_info=subscription, data=payload, vapid_private_key=Vapid.from_pem(pem),
            vapid_claims={"sub": settings.vapid_subject}, ttl=24 * 3600, timeout=settings.push_http_timeout,
            headers={"Topic": collapse_id(send.event_key), "Urgency": "high"}, requests_session=session,
        )
    except WebPushException as exc:
        response = exc.response
        if response is None:
            raise Retry(None, "push service unreachable") from None
    except Exception as exc:  # requests' connection errors
        raise Retry(None, f"push service unreachable: {type(exc).__name__}") from None
    finally:
        session.close()
    if response.status_code in (200, 201, 202):
        return response.status_code
    if response.status_code in (404, 410):
        raise Gone(response.status_code, "subscription expired")
    if response.status_code == 429 or response.status_code >= 500:
        raise Retry(response.status_code, "push service unavailable", _retry_after(response))
    raise Refused(response.status_code, "push service refused")


SENDERS = {"fcm": send_fcm, "webpush": send_webpush}


# -- one send ----------------------------------------------------------------------------


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds until the next attempt: 4 s doubling to an hour, jittered; at least Retry-After."""
    jittered = random.uniform(0.5, 1.0) * min(3600, 2 * 2 ** attempt)
    return max(retry_after, jittered) if retry_after is not None else jittered


def deliver_one(*, session: Session, send_id, settings: Settings) -> str:
    """Claim, push and record one send; returns what became of it."""
    now = utcnow()
    claimed = session.execute(
        update(NotificationSend)
        .where(NotificationSend.id == send_id, NotificationSend.status == "pending",
               NotificationSend.next_attempt_at <= now)
        .values(status="sending", claimed_at=now, attempts=NotificationSend.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if not claimed:
        return "not_due"
    send = session.get(NotificationSend, send_id, populate_existing=True)
    device = session.get(Device, send.device_id) if send.device_id else None
    if device is None:
        return _finish(session, send, "removed", error="device removed")
    try:
        code = SENDERS[send.channel](send, device.token, settings)
    except Gone as exc:
        # The token itself is dead: every account's row of it goes (accounts switched on one phone).
        log.info("push %s: device %s is gone (%s); every row of its token removed", send.id, device.id, exc)
        owners = list(session.scalars(delete(Device).where(Device.platform == device.platform,
                                                           Device.token_hash == device.token_hash)
                                      .returning(Device.user_id)))
        refresh_targets(session=session, user_ids=owners)  # commits with the removal
        return _finish(session, send, "removed", code=exc.code, error=str(exc))
    except Refused as exc:
        return _finish(session, send, "failed", code=exc.code, error=str(exc))
    except Retry as exc:
        if send.attempts >= MAX_ATTEMPTS:
            return _finish(session, send, "failed", code=exc.code, error=f"gave up: {exc}")
        delay = backoff(send.attempts, exc.retry_after)
        log.info("push %s: %s; retry %s in %.0f s", send.id, exc, send.attempts + 1, delay)
        metrics.NOTIFICATIONS_SENT.labels(send.channel, "retry").inc()
        session.execute(update(NotificationSend).where(NotificationSend.id == send.id,
                                                       NotificationSend.status == "sending")
                        .values(status="pending", next_attempt_at=utcnow() + timedelta(seconds=delay),
                                response_code=exc.code, error=str(exc)[:200]))
        session.commit()
        return "retry"
    device.last_sent_at = utcnow()
    return _finish(session, send, "sent", code=code)


def _finish(session: Session, send: NotificationSend, status: str, *, code: int | None = None,
            error: str | None = None) -> str:
    session.execute(
        update(NotificationSend).where(NotificationSend.id == send.id, NotificationSend.status == "sending")
        .values(status=status, response_code=code, error=(error or None) and error[:200],
                sent_at=utcnow() if status == "sent" else None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    metrics.NOTIFICATIONS_SENT.labels(send.channel, status).inc()
    if status in ("sent", "failed"):  # "removed": the device is gone, not the service
        service_status.count_call("notifications", ok=status == "sent")
    return status


@app.task(name=DELIVER_TASK, acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90,
          max_retries=3)
def deliver_task(send_ids: list[str]) -> dict:
    """Push each send (ids of NotificationSend rows); a send already taken is skipped."""
    settings = get_settings()
    outcomes: dict[str, int] = {}
    for send_id in send_ids[:KICK_BATCH]:
        with session_scope() as session:
            outcome = deliver_one(session=session, send_id=uuid.UUID(send_id), settings=settings)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
