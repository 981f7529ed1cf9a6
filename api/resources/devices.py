"""Devices that receive pushes: phones (FCM registration tokens) and browsers (Web Push)."""
from __future__ import annotations

import json

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from api.db import get_db, get_read_db
from api.errors import ApiError
from api.inputs import UnsafeJson, loads_checked
from api.pagination import page
from api.schemas import PageQuerySchema, page_schema
from api.security import auth_required, current_settings, current_user, lock_owner, owned_or_404
from shared.models import Device, utcnow
from shared.notifications import PLATFORMS, refresh_targets, token_hash, vapid_public_key
from shared.webhooks import UnsafeUrl, check_url

blp = Blueprint("devices", __name__, url_prefix="/v1/devices",
                description="Your devices: where reminders and job pushes are sent.")

MAX_DEVICES_PER_USER = 50


class DeviceSchema(Schema):
    id = fields.UUID()
    platform = fields.String(metadata={"enum": list(PLATFORMS)})
    name = fields.String()
    created_at = fields.String()
    updated_at = fields.String()
    last_sent_at = fields.String(allow_none=True)


DevicePageSchema = page_schema(DeviceSchema, "DevicePageSchema")


class _Token(fields.Field):
    """An FCM token (a string), or a PushSubscription (an object, or its JSON as a string)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, (str, dict)):
            raise ValidationError("A string (FCM) or a PushSubscription object (webpush).")
        return value


class DeviceCreateSchema(Schema):
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    token = _Token(required=True, metadata={
        "description": "fcm: the registration token; webpush: the PushSubscription JSON "
                       '{"endpoint", "keys": {"p256dh", "auth"}}.',
        "oneOf": [{"type": "string"}, {"type": "object"}],
    })
    name = fields.String(validate=validate.Length(max=200), metadata={"description": 'e.g. "Pixel 8"'})

    @validates_schema
    def _token_fits_platform(self, data, **_kwargs):
        if "platform" not in data or "token" not in data:
            return
        data["token"] = _normalize(data["platform"], data["token"])


def _normalize(platform: str, token) -> str:
    """The token as stored: the FCM token, or the subscription as compact JSON."""
    if platform == "fcm":
        if not isinstance(token, str) or not 20 <= len(token) <= 4096 or any(c.isspace() for c in token):
            raise ValidationError("An FCM registration token: 20-4096 characters, no spaces.", "token")
        return token
    if isinstance(token, str):
        try:
            token = loads_checked(token)  # a second parse: the body's guard saw only a string
        except UnsafeJson as exc:
            raise ValidationError(f"The PushSubscription: {exc}", "token") from None
        except ValueError:
            raise ValidationError("The PushSubscription as JSON.", "token") from None
    keys = token.get("keys") if isinstance(token, dict) else None
    endpoint = token.get("endpoint") if isinstance(token, dict) else None
    if not isinstance(endpoint, str) or not isinstance(keys, dict) or not all(
        isinstance(keys.get(k), str) and 0 < len(keys[k]) <= 200 for k in ("p256dh", "auth")
    ) or len(endpoint) > 2048:
        raise ValidationError('A PushSubscription: {"endpoint", "keys": {"p256dh", "auth"}}.', "token")
    return json.dumps({"endpoint": endpoint, "keys": {"p256dh": keys["p256dh"], "auth": keys["auth"]}},
                      separators=(",", ":"))


def _identity(platform: str, token: str) -> str:
    # A browser's subscription keeps its endpoint while its keys may be renewed.
    return token_hash(platform, json.loads(token)["endpoint"] if platform == "webpush" else token)


def device_to_dict(device: Device) -> dict:
    """The device as the api shows it: never its token."""
    return {
        "id": str(device.id),
        "platform": device.platform,
        "name": device.name,
        "created_at": device.created_at.isoformat(),
        "updated_at": device.updated_at.isoformat(),
        "last_sent_at": device.last_sent_at.isoformat() if device.last_sent_at else None,
    }



@blp.route("")
class Devices(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, DevicePageSchema)
    def get(self, query):
        """Your devices, newest first."""
        stmt = select(Device).where(Device.user_id == current_user().id)
        return page(get_read_db(current_user().id), stmt, Device, cursor=query["cursor"], limit=query["limit"], to_dict=device_to_dict)

    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    @blp.alt_response(200, schema=DeviceSchema, description="You registered this token already: updated.")
    @blp.alt_response(409, description="Too many devices.")
    @blp.alt_response(422, description="A token that does not fit the platform, or an unusable push endpoint.")
    def post(self, data):
        """Register a device for pushes; the same token again (from you) updates it."""
        user, session, platform = current_user(), get_db(), data["platform"]
        if platform == "webpush":
            try:
                check_url(json.loads(data["token"])["endpoint"], current_settings())
            except UnsafeUrl as exc:
                raise ApiError(422, "unsafe_url", f"The push endpoint cannot be used: {exc}",
                               errors={"token": [str(exc)]}) from None
        identity = _identity(platform, data["token"])
        # Keyed by (user, token): another user's row with this token is theirs, never touched
        # here (whoever learns an endpoint could otherwise swap in their own keys).
        mine = (Device.user_id == user.id, Device.platform == platform, Device.token_hash == identity)
        lock_owner(session, user.id)  # the count and the insert below, one request at a time per user
        device = session.scalar(select(Device).where(*mine))
        if device is None:
            count = session.scalar(select(func.count()).select_from(Device).where(Device.user_id == user.id))
            if count >= MAX_DEVICES_PER_USER:
                raise ApiError(409, "too_many_devices", f"You have {count} devices; the limit is "
                               f"{MAX_DEVICES_PER_USER}. Delete one you no longer use first.")
            device = Device(user_id=user.id, platform=platform, token=data["token"], token_hash=identity,
                            name=data.get("name", ""))
            session.add(device)
            try:
                session.flush()
                refresh_targets(session=session, user_ids=[user.id])
                session.commit()
                return device_to_dict(device)
            except IntegrityError:  # a database without the lock (none today): the row is there now
                session.rollback()
                device = session.scalar(select(Device).where(*mine))
        # The same phone or browser of the same user: its keys may have been renewed.
        device.token = data["token"]
        device.updated_at = utcnow()
        if "name" in data:
            device.name = data["name"]
        session.commit()
        return device_to_dict(device), 200


@blp.route("/webpush-key")
class WebPushKey(MethodView):
    decorators = [auth_required()]

    @blp.response(200, Schema.from_dict({"public_key": fields.String()}, name="WebPushKey"))
    @blp.alt_response(503, description="Web Push is not configured (VAPID_PRIVATE_KEY).")
    def get(self):
        """The VAPID public key to pass to the browser's pushManager.subscribe()."""
        key = vapid_public_key(current_settings())
        if key is None:
            raise ApiError(503, "webpush_not_configured", "Web Push is not configured on this server.")
        return {"public_key": key}


@blp.route("/<uuid:device_id>")
class DevicesById(MethodView):
    decorators = [auth_required()]

    @blp.response(204)
    @blp.alt_response(404, description="No such device (or not yours).")
    def delete(self, device_id):
        """Stop pushes to a device."""
        session = get_db()
        device = owned_or_404(Device, device_id)
        session.delete(device)
        refresh_targets(session=session, user_ids=[device.user_id])
        session.commit()
        return "", 204

