"""Credentials from our encrypted tokens, API clients, and Google's faults mapped to job errors.

Retries: each call is made with the client library's `num_retries` (GOOGLE_API_RETRIES),
which retries 429, 5xx and 403 rateLimitExceeded/userRateLimitExceeded in-process with
jittered exponential backoff (random() * 2**n s); a short blip costs no job retry. When it
still fails, the job raises RetryableJobError and the job runner backs off (full jitter,
bounded by the type's max_attempts), so a long outage does not hold a worker asleep.
"""
from __future__ import annotations

import json
import logging
import socket
import uuid
from contextlib import contextmanager
from datetime import timezone

import httplib2
import redis
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from sqlalchemy import select, text, update

from shared import crypto, metrics
from shared import status as service_status
from shared.db import is_postgres
from shared.google_oauth import SCOPES, missing_scopes, scope_name
from shared.models import GoogleIntegration, Job, utcnow
from shared.redis_clients import cache_redis
from shared.settings import Settings
from workers.job_runner import JobContext, JobFailed, RetryableJobError, backoff_seconds

log = logging.getLogger(__name__)

RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}


class ReauthRequired(Exception):
    """The grant was revoked or expired (invalid_grant): the user must connect again."""


def load_integration(session, user_id) -> GoogleIntegration:
    integration = session.scalar(select(GoogleIntegration).where(GoogleIntegration.user_id == user_id))
    if integration is None:
        raise JobFailed("google_not_connected", "No Google account is connected; connect one first.")
    if integration.status == "reauth_required":
        raise JobFailed("google_reauth_required", "Google access was revoked or expired; connect the account again.")
    return integration


def credentials_for(integration: GoogleIntegration, settings: Settings) -> Credentials:
    try:
        refresh_token = crypto.decrypt(integration.refresh_token_encrypted, settings)
        access_token = crypto.decrypt(integration.access_token_encrypted, settings) if integration.access_token_encrypted else None
    except crypto.EncryptionNotConfigured as exc:
        raise JobFailed("google_not_configured", str(exc))
    except crypto.DecryptionFailed as exc:
        raise JobFailed("google_reauth_required", f"{exc} Connect the Google account again.")
    expiry = integration.access_token_expires_at
    return Credentials(
        token=access_token,
        refresh_token=refresh_token,
        token_uri=settings.google_token_uri,
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret,
        scopes=list(integration.scopes or SCOPES),
        # google-auth compares naive UTC datetimes.
        expiry=expiry.astimezone(timezone.utc).replace(tzinfo=None) if expiry else None,
    )


def save_refreshed_token(ctx: JobContext, integration: GoogleIntegration, credentials: Credentials,
                         settings: Settings) -> None:
    """Keep a token refreshed during the job, in its own transaction (the job may still fail)."""
    if not credentials.token:
        return
    known = crypto.decrypt(integration.access_token_encrypted, settings) if integration.access_token_encrypted else None
    if credentials.token == known:
        return
    expiry = credentials.expiry.replace(tzinfo=timezone.utc) if credentials.expiry else None
    with ctx.own_transaction() as session:
        if is_postgres(session):
            # The job's own session may hold this row's lock (a flushed sync position): give
            # up quickly rather than wait on ourselves. The next refresh costs one call.
            session.execute(text("SET LOCAL lock_timeout = '2s'"))
        session.execute(
            update(GoogleIntegration).where(GoogleIntegration.id == integration.id)
            .values(access_token_encrypted=crypto.encrypt(credentials.token, settings),
                    access_token_expires_at=expiry, updated_at=utcnow())
        )


def mark_reauth_required(ctx: JobContext, integration_id) -> None:
    """Stop this account's syncs until the user connects again (committed even though the job fails)."""
    from shared.notifications import google_reauth_required, kick

    with ctx.own_transaction() as session:
        turned = session.execute(
            update(GoogleIntegration)
            .where(GoogleIntegration.id == integration_id, GoogleIntegration.status != "reauth_required")
            .values(status="reauth_required", last_error_code="google_reauth_required",
                    access_token_encrypted=None, updated_at=utcnow())
        ).rowcount
        # Only the turn to reauth_required tells the user, once (the push is keyed by the grant).
        if turned:
            kick(session, google_reauth_required(session=session, integration_id=integration_id))
        session.commit()


def build_service(name: str, version: str, credentials: Credentials, settings: Settings):
    """A Calendar or Gmail client from the discovery document bundled with the library.

    GOOGLE_API_ROOT replaces the root URL (tests: the fake server): the Calendar
    document's methods are relative to "calendar/v3/", Gmail's carry "gmail/v1/" themselves.
    """
    options = None
    if settings.google_api_root:
        root = settings.google_api_root.rstrip("/") + "/"
        options = {"api_endpoint": root + ("calendar/v3/" if name == "calendar" else "")}
    http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=settings.google_http_timeout))
    return build(name, version, http=http, static_discovery=True, cache_discovery=False, client_options=options)


def _reason(exc: HttpError) -> str:
    try:
        error = json.loads(exc.content.decode("utf-8")).get("error", {})
        errors = error.get("errors") or [{}]
        return errors[0].get("reason") or error.get("status") or ""
    except (ValueError, AttributeError):
        return ""


def execute(request, *, api: str, settings: Settings, retries: int | None = None):
    """Run one API request: counted, retried in-call, refresh failures mapped."""
    try:
        result = request.execute(num_retries=settings.google_api_retries if retries is None else retries)
    except HttpError as exc:
        metrics.GOOGLE_API_CALLS.labels(api, str(exc.resp.status)).inc()
        service_status.count_call("google", ok=exc.resp.status < 500 and exc.resp.status != 429)
        raise
    except RefreshError as exc:
        metrics.GOOGLE_API_CALLS.labels("oauth_refresh", "error").inc()
        if "invalid_grant" in str(exc.args[0] if exc.args else ""):
            raise ReauthRequired() from None
        raise RetryableJobError("google_unavailable", "Google's token endpoint refused a refresh; retrying.") from None
    except (TransportError, httplib2.HttpLib2Error, socket.timeout, OSError):
        metrics.GOOGLE_API_CALLS.labels(api, "error").inc()
        service_status.count_call("google", ok=False)
        raise RetryableJobError("google_unavailable", "Google did not answer in time; retrying.") from None
    metrics.GOOGLE_API_CALLS.labels(api, "200").inc()
    service_status.count_call("google", ok=True)
    return result


def job_error(exc: HttpError, attempt: int) -> Exception:
    """The job error for an HttpError the caller does not handle itself (no URLs, no tokens)."""
    status = exc.resp.status
    reason = _reason(exc)
    if status == 429 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return RetryableJobError("google_rate_limited", f"Google rate limit ({status} {reason}); retrying later.",
                                 retry_after=backoff_seconds(attempt, base=5))
    if status >= 500:
        return RetryableJobError("google_unavailable", f"Google answered {status}; retrying.")
    if status == 401:
        return JobFailed("google_reauth_required", "Google no longer accepts this account's access; connect again.")
    return JobFailed("google_api_error", f"Google answered {status} {reason}".strip() + ".")


@contextmanager
def google_session(ctx: JobContext, settings: Settings):
    """Credentials for the job owner's account, which must have granted the scopes of the job's
    type; maps Google's faults to job errors on the way out."""
    integration = load_integration(ctx.session, ctx.user.id)
    missing = missing_scopes(integration.scopes, ctx.job_type.google_scopes)
    if missing:
        names = ", ".join(scope_name(scope) for scope in missing)
        raise JobFailed("google_scope_missing", f"Google access to {names} was not granted; connect Google again "
                                                f"and allow it.")
    credentials = credentials_for(integration, settings)
    try:
        yield integration, credentials
    except ReauthRequired:
        ctx.session.rollback()
        mark_reauth_required(ctx, integration.id)
        raise JobFailed("google_reauth_required",
                        "Google access was revoked or expired; connect the account again (syncs are paused).")
    except HttpError as exc:
        raise job_error(exc, ctx.attempt) from None
    finally:
        try:
            save_refreshed_token(ctx, integration, credentials, settings)
        except Exception:  # never let bookkeeping hide the job's own outcome
            log.warning("could not store a refreshed Google access token", exc_info=False)


# Take the lock from `holder` (ARGV[1]) only if it still holds it.
_STEAL = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def _job_running(ctx: JobContext, job_id: str) -> bool:
    try:
        job_uuid = uuid.UUID(job_id)
    except ValueError:
        return False
    with ctx.own_transaction() as session:
        return session.scalar(select(Job.status).where(Job.id == job_uuid)) == "running"


@contextmanager
def account_lock(ctx: JobContext, kind: str, *, ttl: int):
    """At most one `kind` sync of an account at a time.

    The lock holds the job's id: the same job coming back (a redelivered message) re-enters
    it, and a holder that is no longer running (canceled and killed, or its worker died and
    the sweeper moved it on) is taken over at once instead of blocking until the TTL.
    """
    client = cache_redis()
    key, me = f"google-sync:{ctx.user.id}:{kind}", str(ctx.job.id)
    if not client.set(key, me, nx=True, ex=ttl):
        holder = (client.get(key) or b"").decode()
        if holder == me:
            client.expire(key, ttl)  # this job's own message, redelivered
        elif holder and not _job_running(ctx, holder) and client.eval(_STEAL, 1, key, holder, me, ttl):
            log.info("took over the %s sync lock from job %s, which is no longer running", kind, holder)
        elif holder or not client.set(key, me, nx=True, ex=ttl):
            raise RetryableJobError("sync_in_progress",
                                    f"Another {kind} sync of this account is running; retrying after it.", retry_after=5)
    try:
        yield
    finally:
        try:
            client.eval(_RELEASE, 1, key, me)
        except redis.RedisError:
            pass  # it expires on its own
