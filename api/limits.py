"""Rate limits (flask-limiter): per user when a valid token is sent, per IP always, and a
stricter per-IP limit on the credential endpoints."""
from __future__ import annotations

from flask import Flask, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address

from api.security import user_id_from_token
from shared.settings import Settings

CREDENTIAL_PATHS = ("/v1/auth/login", "/v1/auth/register", "/v1/auth/refresh")
UNLIMITED_PATHS = ("/health", "/ready", "/metrics")


def user_or_ip() -> str:
    user_id = user_id_from_token()
    return f"user:{user_id}" if user_id else f"ip:{get_remote_address()}"


def _probe() -> bool:
    # Probes and scrapes must neither be starved by client traffic nor count against it.
    return request.path in UNLIMITED_PATHS


def _not_credentials() -> bool:
    return request.path not in CREDENTIAL_PATHS


def init_app(app: Flask, settings: Settings) -> Limiter:
    app.config.update(
        RATELIMIT_ENABLED=settings.rate_limit_enabled,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_url,
        RATELIMIT_STORAGE_OPTIONS={"socket_timeout": 2, "socket_connect_timeout": 2,
                                   "max_connections": settings.redis_pool_size},
        RATELIMIT_STRATEGY="moving-window",
        # Off: the limiter would overwrite a 202's Retry-After (a poll hint) with its own
        # reset time. api.errors sets Retry-After on the 429 itself.
        RATELIMIT_HEADERS_ENABLED=False,
        # A Redis outage must not take the API down with it: count in memory meanwhile.
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        RATELIMIT_KEY_PREFIX="rl",
    )
    limiter = Limiter(
        key_func=get_remote_address,
        app=app,
        application_limits=[
            ApplicationLimit(
                f"{settings.rate_limit_per_minute}/minute;{settings.rate_limit_burst}/second",
                key_function=user_or_ip, scope="user", exempt_when=_probe,
            ),
            # Several users behind one NAT share an IP: allow them more together.
            ApplicationLimit(
                f"{settings.rate_limit_per_minute * 4}/minute",
                key_function=get_remote_address, scope="ip", exempt_when=_probe,
            ),
            ApplicationLimit(
                f"{settings.auth_rate_limit_per_minute}/minute",
                key_function=get_remote_address, scope="credentials", exempt_when=_not_credentials,
            ),
        ],
    )
    app.extensions["assistant_limiter"] = limiter
    return limiter
