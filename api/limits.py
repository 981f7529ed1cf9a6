"""Rate limits (flask-limiter): per user when a valid token is sent, per IP always, and a
stricter per-IP limit on the credential endpoints; and the cap on a user's long-polls."""
from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator

import redis
from flask import Flask, g, request
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
    app.after_request(_retry_after_when_refused)
    return limiter


def _retry_after_when_refused(response):
    """A held connection refused by a cap answered at once: tell the client when to come back."""
    retry_after = g.get("held_retry_after")
    if retry_after is not None and "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(retry_after)
    return response


def jittered(seconds: int) -> int:
    """A Retry-After of about `seconds`, spread so refused clients do not come back together."""
    return max(1, round(seconds * random.uniform(1.0, 1.5)))


# -- held connections (one cap per process) --------------------------------------------------

# Every request held open (a ?wait= poll, an event stream) holds one of this process's
# threads (or, under gevent, memory and a socket). Per-user caps alone let a crowd of
# accounts hold every thread (9 accounts x 4 polls stalled another user's GET /v1/me for
# 8 s); this cap per process keeps MAX_HELD_CONNECTIONS below the thread count, so the
# rest are always free for ordinary requests.
_held_lock = threading.Lock()
_held = 0


@contextlib.contextmanager
def held_connection(settings: Settings) -> Iterator[bool]:
    """Yield whether this process may hold one more connection now (MAX_HELD_CONNECTIONS)."""
    global _held
    with _held_lock:
        granted = _held < settings.max_held_connections
        if granted:
            _held += 1
    try:
        yield granted
    finally:
        if granted:
            with _held_lock:
                _held -= 1


def held_now() -> int:
    """Connections this process holds now (metrics, tests)."""
    return _held


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
def long_poll_slot(user_id, seconds: float, settings: Settings, *, poll_after: int = 2) -> Iterator[bool]:
    """Yield whether the user may hold a thread for a `seconds` long-poll now: under this
    process's MAX_HELD_CONNECTIONS and the user's MAX_LONG_POLLS_PER_USER. A refused poll
    answers at once, with Retry-After about `poll_after` (the job type's poll interval)."""
    with held_connection(settings) as held:
        with (_user_poll_slot(user_id, seconds, settings) if held else contextlib.nullcontext(False)) as granted:
            if not granted:
                g.held_retry_after = jittered(poll_after)
            yield granted


@contextlib.contextmanager
def _user_poll_slot(user_id, seconds: float, settings: Settings) -> Iterator[bool]:
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


# -- event streams (per user, leases) --------------------------------------------------------

# A stream may last an hour, longer than any process is sure to live: its slot is a lease
# that the stream renews at each heartbeat, so a stream whose process died stops counting
# within a lease.
STREAM_LEASE_SECONDS = 45


def stream_key(user_id) -> str:
    return f"streams:{user_id}"


class StreamLease:
    """One of the user's MAX_STREAMS_PER_USER stream slots, held while `granted`."""

    def __init__(self, user_id, settings: Settings):
        self.key, self.member = stream_key(user_id), uuid.uuid4().hex
        cap = settings.max_streams_per_user
        self.granted = True
        if cap <= 0:
            self.key = None
            return
        now = time.time()
        try:
            self.granted = bool(cache_redis().eval(_CLAIM_POLL, 1, self.key, now, now + STREAM_LEASE_SECONDS,
                                                   self.member, cap, STREAM_LEASE_SECONDS + 1))
        except redis.RedisError as exc:
            log.warning("stream cap not checked: %s", exc)
            self.key = None

    def renew(self) -> None:
        if self.key is None or not self.granted:
            return
        try:
            with cache_redis().pipeline(transaction=False) as pipe:
                pipe.zadd(self.key, {self.member: time.time() + STREAM_LEASE_SECONDS}, xx=True)
                pipe.expire(self.key, STREAM_LEASE_SECONDS + 1)
                pipe.execute()
        except redis.RedisError:
            pass  # it lapses at its score; the next heartbeat tries again

    def release(self) -> None:
        if self.key is None or not self.granted:
            return
        self.granted = False
        try:
            cache_redis().zrem(self.key, self.member)
        except redis.RedisError:
            pass
