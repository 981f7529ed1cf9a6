"""Integrations: connect a Google account (OAuth with PKCE), see it, disconnect it.

Two Google calls happen on these request paths, each bounded by GOOGLE_HTTP_TIMEOUT: the
code exchange in the callback, and the revoke in DELETE. The revoke stays in the request
rather than becoming a job because the user asked for our copy of the grant to be gone
now: a job would need the refresh token to outlive the request, in params (never) or in
a row kept only for it. When Google does not answer, our tokens are deleted anyway and the
answer says `revoked_at_google: false` (the user can remove access in their Google account).
"""
from __future__ import annotations

import hmac
import logging

from flask import current_app, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import delete, select

from api.db import get_db
from api.errors import ApiError
from api.schemas import (
    AuthorizeSchema,
    CallbackQuerySchema,
    DisconnectSchema,
    IntegrationListSchema,
    IntegrationSchema,
    PushAnswerSchema,
)
from api.security import auth_required, current_user
from shared import crypto, google, metrics
from shared.jobs import JobError, dispatch, submit_job
from shared.models import CalendarEvent, GoogleIntegration, GoogleWrite, MailMessage, User, utcnow
from shared.notify import cache_redis
from shared.synced import integration_to_dict

log = logging.getLogger(__name__)

blp = Blueprint("integrations", __name__, url_prefix="/v1/integrations",
                description="Connected accounts (Google Calendar and Gmail).")

SYNC_TYPES = ("calendar.sync", "mail.sync")


def _settings():
    return current_app.config["SETTINGS"]


def _require_configured():
    missing = google.missing_settings(_settings())
    if missing:
        raise ApiError(503, "google_not_configured",
                       f"Google is not configured on this server; the operator must set {', '.join(missing)}.",
                       headers={"Retry-After": "3600"})


def _integration_of(session, user_id) -> GoogleIntegration | None:
    return session.scalar(select(GoogleIntegration).where(GoogleIntegration.user_id == user_id))


@blp.route("")
class Integrations(MethodView):
    decorators = [auth_required()]

    @blp.response(200, IntegrationListSchema)
    def get(self):
        """What is connected, and when each sync last finished."""
        integration = _integration_of(get_db(), current_user().id)
        item = integration_to_dict(integration, configured=google.configured(_settings()))
        return {"items": [item], "next_cursor": None}


@blp.route("/google")
class GoogleIntegrationView(MethodView):
    decorators = [auth_required()]

    @blp.response(200, IntegrationSchema)
    def get(self):
        """The Google connection."""
        return integration_to_dict(_integration_of(get_db(), current_user().id),
                                   configured=google.configured(_settings()))

    @blp.response(200, DisconnectSchema)
    @blp.alt_response(404, description="No Google account is connected.")
    def delete(self):
        """Disconnect: revoke the grant at Google, delete our tokens and the synced copies."""
        session = get_db()
        user = current_user()
        integration = _integration_of(session, user.id)
        if integration is None:
            raise ApiError(404, "not_found", "No Google account is connected.")
        try:
            refresh_token = crypto.decrypt(integration.refresh_token_encrypted, _settings())
        except (crypto.DecryptionFailed, crypto.EncryptionNotConfigured):
            refresh_token = None  # unreadable: nothing we could revoke with it
        revoked = bool(refresh_token) and google.revoke(settings=_settings(), token=refresh_token)
        metrics.GOOGLE_API_CALLS.labels("oauth_revoke", "ok" if revoked else "error").inc()
        for model in (CalendarEvent, MailMessage, GoogleWrite):
            session.execute(delete(model).where(model.user_id == user.id))
        session.delete(integration)
        session.commit()
        return {"disconnected": True, "revoked_at_google": revoked}


@blp.route("/google/authorize")
class GoogleAuthorize(MethodView):
    decorators = [auth_required()]

    @blp.response(200, AuthorizeSchema)
    @blp.alt_response(503, description="Google is not configured on this server (google_not_configured).")
    def post(self):
        """Start connecting: the consent URL to open in a browser (valid for 10 minutes)."""
        _require_configured()
        url = google.consent_url(settings=_settings(), user_id=current_user().id, cache=cache_redis())
        return {"url": url, "expires_in": google.STATE_TTL_SECONDS}


@blp.route("/google/callback")
class GoogleCallback(MethodView):
    # No bearer token: Google's redirect reaches us from the browser. The one-time state
    # says whose consent this is.

    @blp.doc(security=[])
    @blp.arguments(CallbackQuerySchema, location="query")
    @blp.response(200, IntegrationSchema)
    @blp.alt_response(400, description="Consent denied, or a state that is unknown, used or expired.")
    @blp.alt_response(502, description="Google refused the code or did not answer.")
    def get(self, query):
        """Google redirects here after consent: exchange the code, store the tokens encrypted, start syncing."""
        settings = _settings()
        _require_configured()
        claimed = google.claim_state(state=query.get("state", ""), cache=cache_redis())
        if claimed is None:
            raise ApiError(400, "invalid_state", "This consent link is unknown, used or expired; connect again.")
        user_id, verifier = claimed
        if query.get("error"):
            raise ApiError(400, "google_consent_denied", f"Google answered {query['error']!r}; nothing was connected.")
        if not query.get("code"):
            raise ApiError(400, "bad_request", "The callback carries no code.", errors={"code": ["Missing."]})
        session = get_db()
        user = session.get(User, user_id)
        if user is None:
            raise ApiError(400, "invalid_state", "The account that asked to connect no longer exists.")
        try:
            grant = google.exchange_code(settings=settings, code=query["code"], verifier=verifier)
        except google.GoogleOAuthError as exc:
            metrics.GOOGLE_API_CALLS.labels("oauth_token", "error").inc()
            raise ApiError(502, exc.code, exc.message)
        metrics.GOOGLE_API_CALLS.labels("oauth_token", "ok").inc()

        integration = _integration_of(session, user.id) or GoogleIntegration(user_id=user.id)
        integration.refresh_token_encrypted = crypto.encrypt(grant.refresh_token, settings)
        integration.access_token_encrypted = crypto.encrypt(grant.access_token, settings)
        integration.access_token_expires_at = grant.expires_at
        integration.scopes = grant.scopes
        integration.status = "connected"
        integration.last_error_code = None
        integration.connected_at = utcnow()
        session.add(integration)
        session.flush()
        jobs = []
        for type_name in SYNC_TYPES:
            try:
                jobs.append(submit_job(session=session, user=user, type_name=type_name, params={},
                                       settings=settings, internal=True))
            except JobError as exc:  # e.g. the user's active-jobs cap: the periodic sync catches up
                log.warning("initial %s not queued: %s", type_name, exc.code)
        session.commit()
        for submitted in jobs:
            dispatch(session, submitted)
        return integration_to_dict(integration, configured=True)


@blp.route("/google/push/calendar")
class GoogleCalendarPush(MethodView):
    # No bearer token: Google calls it. The channel's secret token, which Google echoes in
    # X-Goog-Channel-Token, says the notification is from the channel we opened.

    @blp.doc(security=[])
    @blp.response(200, PushAnswerSchema)
    @blp.alt_response(404, description="Not a channel of ours, or a wrong token.")
    def post(self):
        """Calendar push notification: verify the channel, queue a calendar.sync (coalesced)."""
        channel_id = request.headers.get("X-Goog-Channel-ID", "")
        token = request.headers.get("X-Goog-Channel-Token", "")
        session = get_db()
        integration = None
        if 0 < len(channel_id) <= 64:
            integration = session.scalar(select(GoogleIntegration).where(GoogleIntegration.calendar_channel_id == channel_id))
        if (
            integration is None
            or not hmac.compare_digest(integration.calendar_channel_token_hash or "", google.channel_token_hash(token))
            or request.headers.get("X-Goog-Resource-ID") != integration.calendar_channel_resource_id
        ):
            raise ApiError(404, "not_found", "No such channel.")
        # "sync" is the handshake sent when the channel opens: nothing changed yet.
        if request.headers.get("X-Goog-Resource-State") == "sync" or integration.status != "connected":
            return {"queued": False}
        user = session.get(User, integration.user_id)
        try:
            submitted = submit_job(session=session, user=user, type_name="calendar.sync", params={},
                                   settings=_settings(), internal=True)
        except JobError as exc:
            log.info("push: calendar.sync not queued: %s", exc.code)
            return {"queued": False}
        session.commit()
        dispatch(session, submitted)
        return {"queued": submitted.created}
