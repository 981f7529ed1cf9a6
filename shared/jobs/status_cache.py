"""Job status in Redis: what an unchanged poll needs, so it never reads PostgreSQL.

    jobstatus:{job_id}           hash {owner, status, etag, version}, kept ENTRY_SECONDS
    jobstatus:{job_id}:pending   writers committing a change of the job now (a counter)

Whoever changes a job calls `track` before committing: it marks the job pending; just before
the commit the row is read as it will commit (the row is locked by the change, so nothing
can slip in between); after the commit the entry is written and the mark released
(shared.jobs.outbox). A poll trusts an entry
only when it has an ETag and no writer is pending, so no poll answers from a state older
than a change that finished committing. Every write is ordered by the row's version
(moved on by a database trigger at each UPDATE): a late writer never rolls an entry back.

A miss (or a pending writer, or Redis not answering) sends the poll to PostgreSQL, which
refills the entry unless a writer is pending. A writer that dies between its commit and
its release leaves the job uncached (the mark lost its ETag) until its mark expires.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db import is_postgres
from shared.jobs import events, outbox, wakeups
from shared.jobs.states import TERMINAL, job_etag, job_to_dict
from shared.models import Job
from shared.redis_clients import cache_redis

log = logging.getLogger(__name__)

ENTRY_SECONDS = 300  # bounds what any missed path could leave behind; a poll refills it
PENDING_SECONDS = 60  # a writer that died mid-commit stops holding its jobs out of the cache


def entry_key(job_id) -> str:
    return f"jobstatus:{job_id}"


def pending_key(job_id) -> str:
    return f"jobstatus:{job_id}:pending"


@dataclass(frozen=True)
class Entry:
    owner: str
    status: str
    etag: str
    version: int

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


# KEYS: entry, pending. ARGV: version, owner, status, etag, entry ttl, release (1: a writer
# after its commit; 0: a refill by a reader).
_WRITE = """
local version = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'version')) or -1
if ARGV[6] == '1' then
  if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
  -- Read after its own commit: the same version is the same row, so >= (it restores the ETag).
  if version < current then return 0 end
else
  -- A reader's copy may predate a commit whose writer died: only a newer one, never one pending.
  if redis.call('EXISTS', KEYS[2]) == 1 or version <= current then return 0 end
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'owner', ARGV[2], 'status', ARGV[3], 'etag', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS: entry, pending. The entry keeps its version, as the floor a stale refill must beat.
_MARK = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], 'etag')
return 1
"""

_RELEASE = """
if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
return 1
"""

def _eval(client, source: str, job_id, *args) -> None:
    """Run a script of this module on `client` (a pipeline, mostly) for one job's keys.

    EVAL, not redis-py's Script: a pipeline holding a Script asks SCRIPT EXISTS first, one more
    round trip on every write. Redis caches the compiled script by its text all the same.
    """
    client.eval(source, 2, entry_key(job_id), pending_key(job_id), *args)


def _write(pipe, job_id, owner, status: str, etag: str, version: int, *, release: bool) -> None:
    _eval(pipe, _WRITE, job_id, version, str(owner), status, etag, ENTRY_SECONDS, "1" if release else "0")


# -- writers ---------------------------------------------------------------------------


def track(session: Session, job_ids: Iterable, *, changed: bool = True, returned: list | None = None
          ) -> _Change | None:
    """Bring these jobs' cached status along with the session's commit, then wake their
    long-polls (unless `changed` is False: the change turned out not to apply).

    The jobs are marked pending now, before the commit; their rows are read just before it
    (the change holds their locks, so nothing slips in between), and the entries written and
    the marks released once it is done (shared.jobs.outbox). A rollback releases the marks.
    `returned`: the changed rows as the UPDATE's RETURNING gave them, which saves reading them
    again on PostgreSQL (its trigger has moved the version on by then; SQLite's runs after); a
    caller that marks before its UPDATE sets it on the entry returned.
    """
    job_ids = list(dict.fromkeys(job_ids))
    if not job_ids:
        return None
    change = _Change(job_ids, changed=changed, returned=returned, marked=_mark(job_ids))
    outbox.register(session, change)
    return change


class _Change(outbox.Entry):
    def __init__(self, job_ids: list, *, changed: bool, returned: list | None, marked: bool):
        self.job_ids, self.changed, self.returned, self.marked = job_ids, changed, returned, marked
        self.rows: list = []

    def before_commit(self, session: Session) -> None:
        if not self.marked:
            return
        if self.returned is not None and is_postgres(session):
            self.rows = self.returned
        else:
            self.rows = session.execute(select(Job.__table__).where(Job.id.in_(self.job_ids))).all()

    def after_rollback(self) -> None:
        if self.marked:
            _release(self.job_ids)

    def after_commit(self) -> None:
        if not self.marked:
            if self.changed:
                for job_id in self.job_ids:
                    wakeups.wake(job_id)
            return
        seen = {row.id for row in self.rows}
        try:
            # One round trip: the entries, the marks released, and the long-polls woken (after the
            # entries, so a woken poll reads the new one).
            with cache_redis().pipeline(transaction=False) as pipe:
                for row in self.rows:
                    current = job_to_dict(row)
                    _write(pipe, row.id, row.user_id, row.status, job_etag(current), row.version, release=True)
                    events.queue_done(pipe, row)  # a live job's `done`, before its wake-up
                for job_id in self.job_ids:
                    if job_id not in seen:  # deleted meanwhile: nothing to cache, only the mark to drop
                        _eval(pipe, _RELEASE, job_id)
                    if self.changed:
                        pipe.publish(wakeups.channel(job_id), b"1")
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("job status cache not updated for %s: %s", self.job_ids, exc)  # the marks expire


def _mark(job_ids: list) -> bool:
    try:
        with cache_redis().pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                _eval(pipe, _MARK, job_id, PENDING_SECONDS)
            pipe.execute()
        return True
    except redis.RedisError as exc:
        # Redis that does not answer a writer answers no poll either (they go to the database).
        log.warning("job status cache not marked for %s: %s", job_ids, exc)
        return False


def _release(job_ids: list) -> None:
    try:
        with cache_redis().pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                _eval(pipe, _RELEASE, job_id)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("job status cache marks not released for %s: %s", job_ids, exc)


def remember_new(session: Session, jobs: Iterable[tuple[Job, dict]]) -> None:
    """Once the session commits, cache these jobs it inserted (version 0) with the dicts their submit answered."""
    jobs = list(jobs)
    if jobs:
        outbox.after_commit(session, lambda: _remember_new(jobs))


def _remember_new(jobs: list[tuple[Job, dict]]) -> None:
    try:
        with cache_redis().pipeline(transaction=False) as pipe:
            for job, current in jobs:
                _write(pipe, job.id, job.user_id, job.status, job_etag(current), job.version or 0, release=False)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("new jobs not cached: %s", exc)


def refill(job: Job, current: dict, etag: str) -> None:
    """A reader's copy of the job, from the database: cached unless a writer is pending or has newer."""
    try:
        _write(cache_redis(), job.id, job.user_id, job.status, etag, job.version, release=False)
    except redis.ResponseError:
        # Not a hash of ours (WRONGTYPE): replace it, or the job would stay uncached.
        try:
            cache_redis().delete(entry_key(job.id))
            _write(cache_redis(), job.id, job.user_id, job.status, etag, job.version, release=False)
        except redis.RedisError as exc:
            log.warning("job status of %s not cached: %s", job.id, exc)
    except redis.RedisError as exc:
        log.warning("job status of %s not cached: %s", job.id, exc)


# -- readers ---------------------------------------------------------------------------


def queue_lookup(pipe, job_id) -> None:
    """Add this job's entry and pending mark to `pipe` (read the answer with `parse`)."""
    pipe.hmget(entry_key(job_id), "owner", "status", "etag", "version")
    pipe.exists(pending_key(job_id))


def parse(values, pending) -> Entry | None:
    """The entry a poll may trust, or None (missing, losing its ETag to a writer, or pending)."""
    owner, status, etag, version = values
    if pending or owner is None or status is None or etag is None or version is None:
        return None
    try:
        return Entry(owner=owner.decode(), status=status.decode(), etag=etag.decode(), version=int(version))
    except (UnicodeDecodeError, ValueError):
        return None  # not written by us: the database answers, and its refill replaces it


def lookup(job_id) -> Entry | None:
    """The trusted entry of a job, or None (also when Redis does not answer)."""
    try:
        pipe = cache_redis().pipeline(transaction=False)
        queue_lookup(pipe, job_id)
        values, pending = pipe.execute()
    except redis.RedisError:
        return None
    return parse(values, pending)
