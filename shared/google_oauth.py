"""Google OAuth for the api: settings checks, the consent URL, the code exchange, pending
links and revoke.

These are the only Google calls on a request path, each bounded by GOOGLE_HTTP_TIMEOUT:
the one code exchange in the callback and the revoke on disconnect. Everything else
(token refresh, Calendar, Gmail) happens in workers.

The OAuth `state` is random and one-time: Redis maps it (for 10 minutes) to the user who
asked for the consent URL, the PKCE code verifier (which never leaves the server) and
where the browser goes back to.

The callback links nothing. Whoever's browser brings the code back, the account that
consented is the one in that browser, and it need not be the account that asked: Bob can
send his consent URL to Alice. So the exchanged tokens wait, encrypted, in a pending link
named by a one-time `link_code` (10 minutes) that the callback hands to the browser; the
signed-in app then completes the link, and only the user who asked may. A link nobody
completes is revoked at Google and dropped (`drop_expired_links`, run by beat).
"""
from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import crypto
from shared.models import GooglePendingLink, utcnow
from shared.settings import Settings

SCOPE_ROOT = "https://www.googleapis.com/auth/"
CALENDAR_EVENTS = SCOPE_ROOT + "calendar.events"  # read and write events
GMAIL_READONLY = SCOPE_ROOT + "gmail.readonly"
GMAIL_COMPOSE = SCOPE_ROOT + "gmail.compose"  # drafts
SCOPES = (CALENDAR_EVENTS, GMAIL_READONLY, GMAIL_COMPOSE)
# Broader scopes a user may have granted before (include_granted_scopes) that cover ours.
COVERED_BY = {
    CALENDAR_EVENTS: {SCOPE_ROOT + "calendar"},
    GMAIL_READONLY: {SCOPE_ROOT + "gmail.modify", "https://mail.google.com/"},
    GMAIL_COMPOSE: {SCOPE_ROOT + "gmail.modify", "https://mail.google.com/"},
}
STATE_TTL_SECONDS = 600
LINK_TTL_SECONDS = 600
LINKED_PAGE = "/v1/integrations/google/linked"  # the default return_to, always allowed


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


def allowed_return(settings: Settings, return_to: str | None) -> str | None:
    """`return_to` when it may be returned to (the default page when None), else None.

    Matched exactly: a prefix match would let https://app.example.evil.com pass for
    https://app.example, an open redirect carrying the link code away.
    """
    if return_to is None or return_to == LINKED_PAGE:
        return LINKED_PAGE
    return return_to if return_to in settings.oauth_return_urls else None


def consent_url(*, settings: Settings, user_id: uuid.UUID, cache: redis.Redis, return_to: str = LINKED_PAGE) -> str:
    """Google's consent URL for this user (offline access, PKCE S256), its state remembered."""
    state = secrets.token_urlsafe(32)
    flow = _flow(settings, autogenerate_code_verifier=True)
    url, _ = flow.authorization_url(
        state=state, access_type="offline", prompt="consent", include_granted_scopes="true"
    )
    record = {"user_id": str(user_id), "verifier": flow.code_verifier, "return_to": return_to}
    cache.set(_state_key(state), json.dumps(record), ex=STATE_TTL_SECONDS)
    return url


@dataclass
class Consent:
    """What a state was made for: who asked, the PKCE verifier, where the browser goes back to."""

    user_id: uuid.UUID
    verifier: str
    return_to: str


def claim_state(*, state: str, cache: redis.Redis) -> Consent | None:
    """What the state was made for; None when unknown, used or expired."""
    if not state or len(state) > 128:
        return None
    raw = cache.getdel(_state_key(state))
    if raw is None:
        return None
    data = json.loads(raw)
    return Consent(uuid.UUID(data["user_id"]), data["verifier"], data.get("return_to", LINKED_PAGE))


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
    import requests
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error

    flow = _flow(settings, code_verifier=verifier, autogenerate_code_verifier=False)
    try:
        token = flow.fetch_token(code=code, timeout=settings.google_http_timeout)
    except Warning as changed:
        # Google's consent screen lets a user untick a scope: oauthlib then raises "Scope has
        # changed" with the token attached. A partial grant is a grant; we keep what was granted.
        token = getattr(changed, "token", None)
        if token is None:
            raise
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


def missing_scopes(granted, required) -> list[str]:
    """The scopes of `required` that `granted` does not cover."""
    have = set(granted or ())
    return [scope for scope in required if scope not in have and not (COVERED_BY.get(scope, set()) & have)]


def scope_name(scope: str) -> str:
    """calendar.events for https://www.googleapis.com/auth/calendar.events."""
    return scope.removeprefix(SCOPE_ROOT)


# -- pending links: exchanged tokens waiting for the app of the user who asked ---------------


def link_hash(link_code: str) -> str:
    return hashlib.sha256(link_code.encode()).hexdigest()


def park_grant(*, session: Session, settings: Settings, user_id: uuid.UUID, grant: "Grant") -> str:
    """Keep `grant` encrypted for LINK_TTL_SECONDS under a new one-time link code (the caller commits)."""
    link_code = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(GooglePendingLink(
        user_id=user_id, code_hash=link_hash(link_code), scopes=grant.scopes,
        refresh_token_encrypted=crypto.encrypt(grant.refresh_token, settings),
        access_token_encrypted=crypto.encrypt(grant.access_token, settings),
        access_token_expires_at=grant.expires_at, created_at=now, expires_at=now + timedelta(seconds=LINK_TTL_SECONDS),
    ))
    return link_code


def take_link(*, session: Session, link_code: str) -> GooglePendingLink | None:
    """The pending link of `link_code`, removed (one use); None when unknown, used or expired.

    An expired link stays for drop_expired_links, which revokes its grant at Google first.
    """
    if not link_code or len(link_code) > 128:
        return None
    link = session.scalar(
        select(GooglePendingLink).where(GooglePendingLink.code_hash == link_hash(link_code),
                                        GooglePendingLink.expires_at > utcnow()).with_for_update()
    )
    if link is not None:
        session.delete(link)
        session.flush()
    return link


def drop_link(*, settings: Settings, link: GooglePendingLink) -> bool:
    """Revoke a pending link's grant at Google (the caller deletes the row); True when Google confirmed."""
    try:
        token = crypto.decrypt(link.refresh_token_encrypted, settings)
    except (crypto.DecryptionFailed, crypto.EncryptionNotConfigured):
        return False  # nothing we could revoke with; it lapses at Google unused
    return revoke(settings=settings, token=token)


def drop_expired_links(*, session: Session, settings: Settings, now: datetime | None = None, batch: int = 100) -> int:
    """Revoke and delete the pending links nobody completed in time; returns how many went."""
    expired = select(GooglePendingLink).where(GooglePendingLink.expires_at <= (now or utcnow())).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        expired = expired.with_for_update(skip_locked=True)  # two beats split the work
    dropped = 0
    for link in session.scalars(expired).all():
        drop_link(settings=settings, link=link)
        session.delete(link)
        session.commit()
        dropped += 1
    return dropped


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
