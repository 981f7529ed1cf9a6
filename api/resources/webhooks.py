"""Webhooks: integrators' endpoints, called with signed events (Standard Webhooks)."""
from __future__ import annotations

import base64
import secrets

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from api.db import get_db, get_read_db
from api.errors import ApiError
from api.pagination import page
from api.schemas import PageQuerySchema, page_schema
from api.security import auth_required, current_settings, current_user, lock_owner, owned_or_404
from shared import crypto
from shared.models import Webhook, WebhookDelivery
from shared.notifications import WEBHOOK_EVENTS, refresh_targets
from shared.webhooks import UnsafeUrl, check_url

blp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks",
                description="Your webhooks: signed HTTPS calls when jobs finish, reminders fire, actions wait.")

MAX_WEBHOOKS_PER_USER = 10


class WebhookSchema(Schema):
    id = fields.UUID()
    url = fields.String()
    events = fields.List(fields.String(metadata={"enum": list(WEBHOOK_EVENTS)}))
    enabled = fields.Boolean()
    created_at = fields.String()


class WebhookCreatedSchema(WebhookSchema):
    secret = fields.String(metadata={"description": "whsec_...: verify our signatures with it. Shown only once."})


WebhookPageSchema = page_schema(WebhookSchema, "WebhookPageSchema")


class WebhookCreateSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=8, max=2048))
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True,
                         validate=validate.Length(min=1, max=len(WEBHOOK_EVENTS)))


class DeliverySchema(Schema):
    id = fields.UUID()
    event = fields.String()
    status = fields.String(metadata={"enum": ["pending", "sending", "succeeded", "failed"]})
    attempts = fields.Integer()
    response_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    next_attempt_at = fields.String(allow_none=True)
    delivered_at = fields.String(allow_none=True)
    created_at = fields.String()


DeliveryPageSchema = page_schema(DeliverySchema, "DeliveryPageSchema")


def webhook_to_dict(webhook: Webhook) -> dict:
    return {"id": str(webhook.id), "url": webhook.url, "events": list(webhook.events), "enabled": webhook.enabled,
            "created_at": webhook.created_at.isoformat()}


def delivery_to_dict(delivery: WebhookDelivery) -> dict:
    def iso(value):
        return value.isoformat() if value else None

    return {"id": str(delivery.id), "event": delivery.event, "status": delivery.status,
            "attempts": delivery.attempts, "response_code": delivery.response_code, "error": delivery.error,
            "next_attempt_at": iso(delivery.next_attempt_at) if delivery.status == "pending" else None,
            "delivered_at": iso(delivery.delivered_at), "created_at": delivery.created_at.isoformat()}



@blp.route("")
class Webhooks(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, WebhookPageSchema)
    def get(self, query):
        """Your webhooks, newest first (their secrets are never shown again)."""
        stmt = select(Webhook).where(Webhook.user_id == current_user().id)
        return page(get_read_db(current_user().id), stmt, Webhook, cursor=query["cursor"], limit=query["limit"], to_dict=webhook_to_dict)

    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookCreatedSchema)
    @blp.alt_response(409, description="Too many webhooks.")
    @blp.alt_response(422, description="A URL that is not https or reaches a private address; an unknown event.")
    @blp.alt_response(503, description="ENCRYPTION_KEYS is not set, so a secret cannot be kept.")
    def post(self, data):
        """Create a webhook; the answer carries its signing secret, shown this once."""
        user, session, settings = current_user(), get_db(), current_settings()
        try:
            check_url(data["url"], settings)
        except UnsafeUrl as exc:
            raise ApiError(422, "unsafe_url", str(exc), errors={"url": [str(exc)]}) from None
        if not crypto.configured(settings):
            raise ApiError(503, "webhooks_not_configured",
                           "Webhooks need ENCRYPTION_KEYS on this server to keep their secrets.")
        lock_owner(session, user.id)  # so that concurrent creations cannot all count below the cap
        count = session.scalar(select(func.count()).select_from(Webhook).where(Webhook.user_id == user.id))
        if count >= MAX_WEBHOOKS_PER_USER:
            raise ApiError(409, "too_many_webhooks",
                           f"You have {count} webhooks; the limit is {MAX_WEBHOOKS_PER_USER}. Delete one first.")
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        webhook = Webhook(user_id=user.id, url=data["url"], events=list(dict.fromkeys(data["events"])),
                          secret_encrypted=crypto.encrypt(secret, settings), enabled=True)
        session.add(webhook)
        session.flush()
        refresh_targets(session=session, user_ids=[user.id])
        session.commit()
        # The secret is in this answer only: no cache (a browser's, a proxy's) may keep it.
        return {**webhook_to_dict(webhook), "secret": secret}, 201, {"Cache-Control": "no-store"}


@blp.route("/<uuid:webhook_id>")
class WebhooksById(MethodView):
    decorators = [auth_required()]

    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, description="No such webhook (or not yours).")
    def get(self, webhook_id):
        """One webhook."""
        return webhook_to_dict(owned_or_404(Webhook, webhook_id))

    @blp.response(204)
    @blp.alt_response(404, description="No such webhook (or not yours).")
    def delete(self, webhook_id):
        """Delete a webhook; deliveries not yet made are dropped."""
        session = get_db()
        webhook = owned_or_404(Webhook, webhook_id)
        session.delete(webhook)
        refresh_targets(session=session, user_ids=[webhook.user_id])
        session.commit()
        return "", 204


@blp.route("/<uuid:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, DeliveryPageSchema)
    @blp.alt_response(404, description="No such webhook (or not yours).")
    def get(self, query, webhook_id):
        """The webhook's deliveries, newest first, with their status and response code."""
        webhook = owned_or_404(Webhook, webhook_id)
        stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id)
        return page(get_read_db(current_user().id), stmt, WebhookDelivery, cursor=query["cursor"], limit=query["limit"],
                    to_dict=delivery_to_dict)
