"""Integrations: connect a Google account (OAuth with PKCE), see it, disconnect it.

Connecting is bound to the signed-in user who started it. The callback, reached by a
browser that carries no token, exchanges the code and links nothing: the tokens wait
encrypted under a one-time link code that goes back to the app (`return_to`), and the app
completes the link with its bearer token. Only the user who called authorize can; a
consent brought back by anyone else is revoked at Google (shared.google_oauth explains why).

Google calls on these request paths, each bounded by GOOGLE_HTTP_TIMEOUT: the code
exchange in the callback, and the revoke in DELETE and of a link completed by the wrong
user. The revoke stays in the request rather than becoming a job because the user asked
for our copy of the grant to be gone now: a job would need the refresh token to outlive
the request, in params (never) or in a row kept only for it. When Google does not answer,
our tokens are deleted anyway and the answer says `revoked_at_google: false` (the user can
remove access in their Google account).
"""
from __future__ import annotations

import hmac
import logging
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import make_response, redirect, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import delete, select

from api.db import get_db
from api.errors import ApiError
from api.schemas import (
    AuthorizeRequestSchema,
    AuthorizeSchema,
    CallbackQuerySchema,
    DisconnectSchema,
    IntegrationListSchema,
    IntegrationSchema,
    LinkCompleteSchema,
    LinkedPageQuerySchema,
    PushAnswerSchema,
)
from api.security import auth_required, current_settings, current_user, request_origin
from shared import audit, crypto, metrics
from shared import google_oauth as google
from shared.jobs import JobError, dispatch, submit_job
from shared.jobtypes import get_job_type
from shared.models import CalendarEvent, GoogleIntegration, GoogleWrite, MailMessage, User, utcnow
from shared.redis_clients import cache_redis
from shared.synced import integration_to_dict

log = logging.getLogger(__name__)

blp = Blueprint("integrations", __name__, url_prefix="/v1/integrations",
                description="Connected accounts (Google Calendar and Gmail).")

SYNC_TYPES = ("calendar.sync", "mail.sync")



def _require_configured():
    missing = google.missing_settings(current_settings())
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
        item = integration_to_dict(integration, configured=google.configured(current_settings()))
        return {"items": [item], "next_cursor": None}


@blp.route("/google")
class GoogleIntegrationView(MethodView):
    decorators = [auth_required()]

    @blp.response(200, IntegrationSchema)
    def get(self):
        """The Google connection."""
        return integration_to_dict(_integration_of(get_db(), current_user().id),
                                   configured=google.configured(current_settings()))

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
            refresh_token = crypto.decrypt(integration.refresh_token_encrypted, current_settings())
        except (crypto.DecryptionFailed, crypto.EncryptionNotConfigured):
            refresh_token = None  # unreadable: nothing we could revoke with it
        revoked = bool(refresh_token) and google.revoke(settings=current_settings(), token=refresh_token)
        metrics.GOOGLE_API_CALLS.labels("oauth_revoke", "ok" if revoked else "error").inc()
        for model in (CalendarEvent, MailMessage, GoogleWrite):
            session.execute(delete(model).where(model.user_id == user.id))
        session.delete(integration)
        audit.record(session, actor=user, action="google.unlink", resource="google_integration", subjects=[user.id],
                     request=request_origin())
        session.commit()
        return {"disconnected": True, "revoked_at_google": revoked}


@blp.route("/google/authorize")
class GoogleAuthorize(MethodView):
    decorators = [auth_required()]

    @blp.arguments(AuthorizeRequestSchema)
    @blp.response(200, AuthorizeSchema)
    @blp.alt_response(422, description="return_to is not one of OAUTH_RETURN_URLS (invalid_return_to).")
    @blp.alt_response(503, description="Google is not configured on this server (google_not_configured).")
    def post(self, data):
        """Start connecting: the consent URL to open in a browser (valid for 10 minutes)."""
        _require_configured()
        return_to = google.allowed_return(current_settings(), data.get("return_to"))
        if return_to is None:
            raise ApiError(422, "invalid_return_to",
                           "return_to must be exactly one of the URLs the operator allowed (OAUTH_RETURN_URLS).",
                           errors={"return_to": ["Not an allowed return URL."]})
        url = google.consent_url(settings=current_settings(), user_id=current_user().id, cache=cache_redis(),
                                 return_to=return_to)
        return {"url": url, "expires_in": google.STATE_TTL_SECONDS}


def _no_store(response):
    # The link code is a bearer secret for 10 minutes: in no cache, and in no Referer.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _back_to(return_to: str, **params):
    """303 to `return_to` with `params` added to its query."""
    parts = urlsplit(return_to)
    query = urlencode(parse_qsl(parts.query, keep_blank_values=True) + list(params.items()))
    return _no_store(redirect(urlunsplit(parts._replace(query=query)), code=303))


@blp.route("/google/callback")
class GoogleCallback(MethodView):
    # No bearer token: Google's redirect reaches us from the browser. The one-time state
    # says who asked, not whose Google account consented: so nothing is linked here.

    @blp.doc(security=[])
    @blp.arguments(CallbackQuerySchema, location="query")
    @blp.response(303, description="To return_to with ?link_code= (or ?error=google_consent_denied, "
                                   "google_oauth_failed, google_unavailable, google_no_refresh_token).")
    @blp.alt_response(400, description="A state that is unknown, used or expired (invalid_state).")
    def get(self, query):
        """Google redirects here after consent: exchange the code and hand the app a one-time link code."""
        settings = current_settings()
        _require_configured()
        consent = google.claim_state(state=query.get("state", ""), cache=cache_redis())
        if consent is None:
            raise ApiError(400, "invalid_state", "This consent link is unknown, used or expired; connect again.")
        if query.get("error") or not query.get("code"):
            return _back_to(consent.return_to, error="google_consent_denied")
        session = get_db()
        if session.get(User, consent.user_id) is None:
            raise ApiError(400, "invalid_state", "The account that asked to connect no longer exists.")
        try:
            grant = google.exchange_code(settings=settings, code=query["code"], verifier=consent.verifier)
        except google.GoogleOAuthError as exc:
            metrics.GOOGLE_API_CALLS.labels("oauth_token", "error").inc()
            return _back_to(consent.return_to, error=exc.code)
        metrics.GOOGLE_API_CALLS.labels("oauth_token", "ok").inc()
        link_code = google.park_grant(session=session, settings=settings, user_id=consent.user_id, grant=grant)
        session.commit()
        return _back_to(consent.return_to, link_code=link_code)


@blp.route("/google/complete")
class GoogleComplete(MethodView):
    decorators = [auth_required()]

    @blp.arguments(LinkCompleteSchema)
    @blp.response(200, IntegrationSchema)
    @blp.alt_response(400, description="A link code that is unknown, used or expired (invalid_link_code).")
    @blp.alt_response(403, description="Another user started this link (link_not_yours): it was revoked at Google.")
    @blp.alt_response(503, description="Google is not configured on this server (google_not_configured).")
    def post(self, data):
        """Finish connecting: link the Google account the callback's code stands for, and start syncing."""
        settings = current_settings()
        _require_configured()
        session = get_db()
        user = current_user()
        link = google.take_link(session=session, link_code=data["link_code"])
        if link is None:
            raise ApiError(400, "invalid_link_code", "This link code is unknown, used or expired; connect again.")
        if link.user_id != user.id:
            # Someone else's consent URL was opened in this user's browser: the Google account
            # that consented is this user's, and the one who asked must not get it.
            revoked = google.drop_link(settings=settings, link=link)
            metrics.GOOGLE_API_CALLS.labels("oauth_revoke", "ok" if revoked else "error").inc()
            session.commit()
            log.warning("google link completed by another user than the one who started it; revoked=%s", revoked)
            raise ApiError(403, "link_not_yours",
                           "Another account started this Google connection, so nothing was connected; "
                           "the access granted with it was revoked at Google.")

        integration = _integration_of(session, user.id) or GoogleIntegration(user_id=user.id)
        integration.refresh_token_encrypted = link.refresh_token_encrypted
        integration.access_token_encrypted = link.access_token_encrypted
        integration.access_token_expires_at = link.access_token_expires_at
        integration.scopes = list(link.scopes)
        integration.status = "connected"
        integration.last_error_code = None
        integration.connected_at = utcnow()
        session.add(integration)
        session.flush()
        audit.record(session, actor=user, action="google.link", resource="google_integration", subjects=[user.id],
                     request=request_origin())
        jobs = []
        for type_name in SYNC_TYPES:
            if google.missing_scopes(integration.scopes, get_job_type(type_name).google_scopes):
                continue  # not granted: the job could only fail
            try:
                jobs.append(submit_job(session=session, user=user, type_name=type_name, params={},
                                       settings=settings, internal=True))
            except JobError as exc:  # e.g. the user's active-jobs cap: the periodic sync catches up
                log.warning("initial %s not queued: %s", type_name, exc.code)
        for submitted in jobs:
            dispatch(session, submitted)
        session.commit()
        return integration_to_dict(integration, configured=True)


LINKED_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;color:#222}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""
LINKED_MESSAGES = {
    "ready": ("Almost done",
              "<p>Go back to the app where you chose to connect Google: it finishes the connection. "
              "Nothing is connected until it does, and this waits 10 minutes.</p>"
              "<p>If you did not start this from your own app, close this page: what you allowed is "
              "revoked when the time is up.</p>"),
    "google_consent_denied": ("Nothing was connected", "<p>Google access was not allowed.</p>"),
    "failed": ("Nothing was connected", "<p>Google did not complete the sign-in. Go back to the app and try again.</p>"),
}


@blp.route("/google/linked")
class GoogleLinkedPage(MethodView):
    # The default return_to: a page for a browser with no app to return to. Its URL carries
    # the link code for an app that opened the flow in a web view; the page never shows it.

    @blp.doc(security=[])
    @blp.arguments(LinkedPageQuerySchema, location="query")
    @blp.response(200, content_type="text/html", description="A small page: the link waits for the app.")
    def get(self, query):
        """Where the browser lands after consent when the app gave no return_to."""
        if query.get("link_code"):
            key = "ready"
        else:
            key = "google_consent_denied" if query.get("error") == "google_consent_denied" else "failed"
        title, body = LINKED_MESSAGES[key]
        response = make_response(LINKED_HTML.format(title=title, body=body), 200)
        response.mimetype = "text/html"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        return _no_store(response)


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
                                   settings=current_settings(), internal=True)
        except JobError as exc:
            log.info("push: calendar.sync not queued: %s", exc.code)
            return {"queued": False}
        dispatch(session, submitted)
        session.commit()
        return {"queued": submitted.created}
