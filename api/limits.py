"""Rate limits (flask-limiter): per user when a valid token is sent, per IP always, and a
stricter per-IP limit on the credential endpoints; and the cap on a user's long-polls."""
from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator

import redis
from flask import Flask, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address

from api.inputs import load_strict_json
from api.security import user_id_from_token
from shared.redis_clients import cache_redis
from shared.settings import Settings

log = logging.getLogger(__name__)

CREDENTIAL_PATHS = ("/v1/auth/login", "/v1/auth/register", "/v1/auth/refresh", "/v1/auth/password-reset",
                    "/v1/auth/password-reset/confirm", "/v1/me/password")
UNLIMITED_PATHS = ("/health", "/ready", "/metrics")


def user_or_ip() -> str:
    user_id = user_id_from_token()
    return f"user:{user_id}" if user_id else f"ip:{get_remote_address()}"


def _probe() -> bool:
    # Probes and scrapes must neither be starved by client traffic nor count against it.
    return request.path in UNLIMITED_PATHS


def _not_credentials() -> bool:
    return request.path not in CREDENTIAL_PATHS


BATCH_PATH = "/v1/jobs/batch"


def _items_cost(ceiling: int):
    """A request's cost against a per-minute limit: a batch counts its items (a 100-item batch
    is about as much work as 100 submits), up to the whole limit so that one still fits."""

    def cost() -> int:
        if request.path != BATCH_PATH or request.method != "POST":
            return 1
        try:  # the body passed api.inputs' guard already (its hook runs first)
            jobs = load_strict_json(request.get_data(cache=True)).get("jobs")
        except Exception:  # not JSON, not an object: the view answers 422, as one request
            return 1
        return max(1, min(len(jobs) if isinstance(jobs, list) else 1, ceiling))

    return cost


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
                f"{settings.rate_limit_per_minute}/minute",
                key_function=user_or_ip, scope="user", exempt_when=_probe,
                cost=_items_cost(settings.rate_limit_per_minute),
            ),
            ApplicationLimit(  # bursts count requests: a batch is one round trip
                f"{settings.rate_limit_burst}/second",
                key_function=user_or_ip, scope="user-burst", exempt_when=_probe,
            ),
            # Several users behind one NAT share an IP: allow them more together.
            ApplicationLimit(
                f"{settings.rate_limit_per_minute * 4}/minute",
                key_function=get_remote_address, scope="ip", exempt_when=_probe,
                cost=_items_cost(settings.rate_limit_per_minute * 4),
            ),
            ApplicationLimit(
                f"{settings.auth_rate_limit_per_minute}/minute",
                key_function=get_remote_address, scope="credentials", exempt_when=_not_credentials,
            ),
        ],
    )
    app.extensions["assistant_limiter"] = limiter
    return limiter


# -- long-polls ------------------------------------------------------------------------------

# Each ?wait= poll holds a gunicorn thread for up to 30 s: without a cap one user's polls
# could hold every thread of every worker. The user's polls in flight are members of a
# sorted set in the cache Redis, scored by when they must be over, so the cap holds across
# gunicorn workers and hosts, and a poll whose process died stops counting at its score.
LONG_POLL_GRACE_SECONDS = 30
_CLAIM_POLL = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


def long_poll_key(user_id) -> str:
    return f"longpoll:{user_id}"


@contextlib.contextmanager
def long_poll_slot(user_id, seconds: float, settings: Settings) -> Iterator[bool]:
    """Yield whether the user may hold a thread for a `seconds` long-poll now (MAX_LONG_POLLS_PER_USER)."""
    cap = settings.max_long_polls_per_user
    if cap <= 0:
        yield True
        return
    key, member, now = long_poll_key(user_id), uuid.uuid4().hex, time.time()
    lifetime = seconds + LONG_POLL_GRACE_SECONDS
    try:
        granted = bool(cache_redis().eval(_CLAIM_POLL, 1, key, now, now + lifetime, member, cap, int(lifetime) + 1))
    except redis.RedisError as exc:
        # Without Redis the polls fall back to polling the database anyway (shared.jobs.wakeups);
        # refusing them all would turn every app's poll loop into a tight one.
        log.warning("long-poll cap not checked: %s", exc)
        yield True
        return
    try:
        yield granted
    finally:
        if granted:
            try:
                cache_redis().zrem(key, member)
            except redis.RedisError:
                pass  # it stops counting at its score
