"""An unchanged job's poll answered from Redis alone: no PostgreSQL read, not even the user's row.

`GET /v1/jobs/{id}` with an If-None-Match that still matches is most of what a phone sends
while a job runs. Everything it needs is in the cache Redis, read in one pipelined round
trip: the token's user version and family (shared.revocation), and the job's owner and
ETag (shared.jobs.status_cache). A long-poll waits on the job's notifications and re-reads
only that entry. Whenever Redis cannot vouch for an answer (a miss, a writer committing,
an unknown token state, another user's job, a changed job), the caller falls through to
the database path, which answers as it always did.
"""
from __future__ import annotations

import time

import jwt
import redis
from flask import g, make_response

from api.limits import long_poll_slot
from api.live import hub
from api.security import bearer_token, request_claims
from shared import revocation
from shared.jobs import status_cache
from shared.redis_clients import cache_redis
from shared.settings import Settings


def not_modified(job_id, seen: set[str], wait: int, settings: Settings):
    """The 304 for a poll whose ETag is still the job's, or None (the database path answers)."""
    token = bearer_token()
    if token is None:
        return None
    try:
        claims = request_claims(token)
        revocation_fields = (claims["sub"], claims.get("fam"))
    except (jwt.InvalidTokenError, KeyError):
        return None
    if revocation_fields[1] is None:
        return None
    try:
        pipe = cache_redis().pipeline(transaction=False)
        revocation.queue_check(pipe, claims)
        status_cache.queue_lookup(pipe, job_id)
        cached_version, family_revoked, values, pending = pipe.execute()
    except redis.RedisError:
        return None
    if not revocation.current_in_cache(claims, cached_version, family_revoked):
        return None
    entry = status_cache.parse(values, pending)
    if entry is None or entry.owner != claims["sub"] or entry.etag not in seen:
        return None
    if wait and not entry.finished:
        deadline = time.monotonic() + wait
        with long_poll_slot(claims["sub"], wait, settings) as granted:
            if granted:
                entry = _wait(job_id, entry.etag, deadline)
        if entry is None or entry.etag not in seen:
            # Changed (the body is needed) or no longer cached: the database path takes over,
            # waiting only what is left of this poll's wait.
            g.poll_deadline = deadline
            return None
    response = make_response("", 304)
    response.headers["ETag"] = entry.etag
    response.headers["Cache-Control"] = "private, no-cache"  # as the 200 would say
    return response


def _wait(job_id, baseline: str, deadline: float):
    """Re-read the job's entry at each notification until its ETag moves or the deadline passes."""
    with hub.waiter(job_id) as waiter:
        entry = status_cache.lookup(job_id)  # once more after subscribing, or a change just before is missed
        while entry is not None and entry.etag == baseline and (remaining := deadline - time.monotonic()) > 0:
            waiter.wait(remaining)
            entry = status_cache.lookup(job_id)
    return entry
