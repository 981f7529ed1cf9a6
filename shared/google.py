"""Google OAuth for the api: settings checks, the consent URL, the code exchange and revoke.

These are the only Google calls on a request path, each bounded by GOOGLE_HTTP_TIMEOUT:
the one code exchange in the callback and the revoke on disconnect. Everything else
(token refresh, Calendar, Gmail) happens in workers.

The OAuth `state` is random and one-time: Redis maps it (for 10 minutes) to the user who
asked for the consent URL and the PKCE code verifier, which never leaves the server.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from shared import crypto
from shared.models import utcnow
from shared.settings import Settings

SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",  # read and write events
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.compose",  # drafts
)
STATE_TTL_SECONDS = 600


class GoogleOAuthError(Exception):
    """The code exchange failed; `code` is stable, `message` is safe to show (no secrets)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def missing_settings(settings: Settings) -> list[str]:
    """The variables that must still be set before an account can be connected."""
    missing = [
        name for name, value in (
            ("GOOGLE_CLIENT_ID", settings.google_client_id),
            ("GOOGLE_CLIENT_SECRET", settings.google_client_secret),
            ("GOOGLE_REDIRECT_URI", settings.google_redirect_uri),
        ) if not value
    ]
    if not crypto.configured(settings):
        # Tokens are never stored in the clear.
        missing.append("ENCRYPTION_KEYS")
    return missing


def configured(settings: Settings) -> bool:
    return not missing_settings(settings)


def client_config(settings: Settings) -> dict:
    """The OAuth client in the shape google-auth-oauthlib reads (a "web" client)."""
    return {
        "web": {
            "client_id": settings.google_client_id,
            "client_secret": settings.google_client_secret,
            "auth_uri": settings.google_auth_uri,
            "token_uri": settings.google_token_uri,
            "redirect_uris": [settings.google_redirect_uri],
        }
    }


def _flow(settings: Settings, **kwargs):
    from google_auth_oauthlib.flow import Flow

    return Flow.from_client_config(
        client_config(settings), scopes=list(SCOPES), redirect_uri=settings.google_redirect_uri, **kwargs
    )


def _state_key(state: str) -> str:
    return f"google:oauth-state:{state}"


def consent_url(*, settings: Settings, user_id: uuid.UUID, cache: redis.Redis) -> str:
    """Google's consent URL for this user (offline access, PKCE S256), its state remembered."""
    state = secrets.token_urlsafe(32)
    flow = _flow(settings, autogenerate_code_verifier=True)
    url, _ = flow.authorization_url(
        state=state, access_type="offline", prompt="consent", include_granted_scopes="true"
    )
    cache.set(_state_key(state), json.dumps({"user_id": str(user_id), "verifier": flow.code_verifier}),
              ex=STATE_TTL_SECONDS)
    return url


def claim_state(*, state: str, cache: redis.Redis) -> tuple[uuid.UUID, str] | None:
    """The (user id, code verifier) the state was made for; None when unknown, used or expired."""
    if not state or len(state) > 128:
        return None
    raw = cache.getdel(_state_key(state))
    if raw is None:
        return None
    data = json.loads(raw)
    return uuid.UUID(data["user_id"]), data["verifier"]


@dataclass
class Grant:
    refresh_token: str
    access_token: str
    expires_at: datetime | None
    scopes: list[str]

    def __repr__(self) -> str:  # never print the tokens
        return f"Grant(scopes={self.scopes!r}, expires_at={self.expires_at!r})"


def exchange_code(*, settings: Settings, code: str, verifier: str) -> Grant:
    """Trade the authorization code for tokens at GOOGLE_TOKEN_URI (one bounded call)."""
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error
    import requests

    flow = _flow(settings, code_verifier=verifier, autogenerate_code_verifier=False)
    try:
        token = flow.fetch_token(code=code, timeout=settings.google_http_timeout)
    except OAuth2Error as exc:
        # exc.error is Google's code (invalid_grant, ...); its description may quote the request.
        raise GoogleOAuthError("google_oauth_failed", f"Google refused the authorization code ({exc.error}).") from None
    except requests.RequestException:
        raise GoogleOAuthError("google_unavailable", "Google's token endpoint did not answer; try connecting again.") from None
    if not token.get("refresh_token"):
        raise GoogleOAuthError(
            "google_no_refresh_token",
            "Google granted no offline access; remove the app at myaccount.google.com/permissions and connect again.",
        )
    granted = token.get("scope") or list(SCOPES)
    if isinstance(granted, str):
        granted = granted.split()
    expires_in = token.get("expires_in")
    return Grant(
        refresh_token=token["refresh_token"],
        access_token=token["access_token"],
        expires_at=utcnow() + timedelta(seconds=int(expires_in)) if expires_in else None,
        scopes=list(granted),
    )


def revoke(*, settings: Settings, token: str) -> bool:
    """Revoke `token` (and so the whole grant) at Google; True when Google confirmed it."""
    import requests

    try:
        response = requests.post(
            settings.google_revoke_uri, data={"token": token},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=settings.google_http_timeout,
        )
    except requests.RequestException:
        return False
    # 400 invalid_token: already revoked or expired at Google, which is what we wanted.
    return response.status_code in (200, 400)


def channel_token_hash(token: str) -> str:
    """What we keep of a push channel's token (Google echoes the token on each notification)."""
    return hashlib.sha256(token.encode()).hexdigest()
