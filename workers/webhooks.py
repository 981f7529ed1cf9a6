"""Webhook delivery: one attempt per webhooks.deliver job, signed per Standard Webhooks.

The delivery row carries the retries: after a failed attempt its next_attempt_at moves on
(exponential, jittered, for about a day) and the tick queues the next attempt's job then.
Long delays as Celery countdowns would outlive the broker's visibility timeout and be
delivered twice; a row in the database waits as long as it must.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import requests
from sqlalchemy import update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as Signer

from shared import crypto, metrics
from shared.models import Webhook, WebhookDelivery, utcnow
from shared.notifications import GIVE_UP_AFTER, next_delay
from shared.settings import Settings, get_settings
from shared.webhooks import UnsafeUrl, check_url, pinned_session
from workers.job_runner import JobContext, job_task

log = logging.getLogger(__name__)



def deliver(*, session: Session, delivery_id, settings: Settings) -> str:
    """Make one attempt at a pending delivery; returns its status afterwards."""
    now = utcnow()
    claimed = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending")
        .values(status="sending", attempts=WebhookDelivery.attempts + 1, next_attempt_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if not claimed:
        return "not_pending"
    delivery = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    webhook = session.get(Webhook, delivery.webhook_id)
    code, error = None, None
    try:
        checked = check_url(webhook.url, settings)  # again: the name may point elsewhere by now
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True)
        timestamp = utcnow()
        signature = Signer(crypto.decrypt(webhook.secret_encrypted, settings)).sign(
            str(delivery.id), timestamp, body)
        headers = {"content-type": "application/json", "user-agent": "assistant-webhooks/1",
                   "webhook-id": str(delivery.id), "webhook-timestamp": str(int(timestamp.timestamp())),
                   "webhook-signature": signature}
        with pinned_session(checked) as http:
            response = http.post(webhook.url, data=body.encode(), headers=headers,
                                 timeout=settings.push_http_timeout, allow_redirects=False)
        code = response.status_code
        if 200 <= code < 300:
            return _finish(session, delivery, "succeeded", code=code)
        error = f"answered {code}"
    except UnsafeUrl as exc:
        error = f"refused: {exc}"[:200]
        metrics.WEBHOOK_DELIVERIES.labels("refused").inc()
    except requests.RequestException as exc:
        error = f"unreachable: {type(exc).__name__}"
    if delivery.created_at + GIVE_UP_AFTER < utcnow() + timedelta(seconds=next_delay(delivery.attempts)):
        return _finish(session, delivery, "failed", code=code, error=f"gave up after {delivery.attempts} attempts: "
                       f"{error}")
    metrics.WEBHOOK_DELIVERIES.labels("retry").inc()
    session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "sending")
        .values(status="pending", response_code=code, error=error[:200],
                next_attempt_at=utcnow() + timedelta(seconds=next_delay(delivery.attempts)))
    )
    session.commit()
    return "pending"


def _finish(session: Session, delivery: WebhookDelivery, status: str, *, code: int | None,
            error: str | None = None) -> str:
    session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id == delivery.id, WebhookDelivery.status == "sending")
        .values(status=status, response_code=code, error=error and error[:200],
                delivered_at=utcnow() if status == "succeeded" else None)
    )
    session.commit()
    metrics.WEBHOOK_DELIVERIES.labels(status).inc()
    return status


@job_task("webhooks.deliver")
def deliver_webhook(ctx: JobContext) -> dict:
    """One attempt at a webhook delivery; the row says how it went and when the next one is."""
    status = deliver(session=ctx.session, delivery_id=_uuid(ctx.params["delivery_id"]), settings=get_settings())
    # The job is the system account's; the log names whose delivery it was.
    log.info("webhook delivery %s of user %s: %s", ctx.params["delivery_id"], ctx.params.get("user_id"), status)
    return {"delivery_id": ctx.params["delivery_id"], "status": status}


def _uuid(value: str):
    import uuid

    return uuid.UUID(value)
