"""Read replicas: reads that tolerate a little lag (reports, admin lists and counts, exports,
plain list endpoints) go to a streaming replica when one is healthy, else to the primary.

- DATABASE_REPLICA_URL lists them (comma-separated); unset, every read is the primary's.
- A replica lagging more than REPLICA_MAX_LAG_SECONDS is skipped. Lag is 0 when it has
  replayed all it received (an idle primary writes nothing, and must not make a healthy
  replica look late), else now - pg_last_xact_replay_timestamp(); measured at most every
  LAG_CACHE_SECONDS per process.
- A replica that does not connect within 1 s is marked down for DOWN_SECONDS: no request
  waits on it again meanwhile, and none gets an error from it (the read goes to the primary).
- Read-your-writes: a commit that changed a user's rows marks `rw:{user}` in Redis for
  REPLICA_READ_AFTER_WRITE_SECONDS (mark_after_commit); that user's reads go to the primary.

Metrics: db_replica_fallbacks_total{reason}, db_replica_lag_seconds{replica}.
"""
from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from shared.db import KEEPALIVES, check_liveness
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

LAG_CACHE_SECONDS = 1.0
DOWN_SECONDS = 5.0
RW_KEY = "rw:{user}"
LAG_SQL = text("SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
               "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END")


class _Replica:
    def __init__(self, url: str, settings: Settings):
        self.url = url
        self.name = make_url(url).render_as_string(hide_password=True)
        # connect_timeout 1 s and keepalives: a replica gone silent costs a second, once.
        self.engine: Engine = create_engine(
            url, pool_size=max(1, settings.db_pool_size // 2), max_overflow=settings.db_max_overflow,
            connect_args={"connect_timeout": 1, **KEEPALIVES, "options": "-c statement_timeout=60000"})
        check_liveness(self.engine)
        self.down_until = 0.0
        self.lag: float | None = None
        self.lag_at = 0.0


class Router:
    """The replicas of this process, with what is known of their health."""

    def __init__(self, settings: Settings):
        self.settings = settings  # a new settings object (tests re-read them) means a new router
        self.replicas = [_Replica(url, settings) for url in settings.database_replica_url]
        self._turn = itertools.count()
        self.pid = os.getpid()

    def dispose(self) -> None:
        for replica in self.replicas:
            # In a forked child the sockets are the parent's: drop them without closing them.
            replica.engine.dispose(close=self.pid == os.getpid())

    def _healthy(self, replica: _Replica) -> bool:
        from shared import metrics

        now = time.monotonic()
        if now < replica.down_until:
            return False
        if replica.lag is None or now - replica.lag_at > LAG_CACHE_SECONDS:
            try:
                with replica.engine.connect() as connection:
                    replica.lag = float(connection.execute(LAG_SQL).scalar() or 0)
            except Exception as exc:  # noqa: BLE001 (any driver error: it is down for now)
                replica.down_until = now + DOWN_SECONDS
                replica.lag = None
                metrics.DB_REPLICA_FALLBACKS.labels("down").inc()
                log.warning("replica %s is down for %ss: %s", replica.name, DOWN_SECONDS, str(exc).splitlines()[0])
                return False
            replica.lag_at = now
            metrics.DB_REPLICA_LAG.labels(replica.name).set(replica.lag)
        if replica.lag > self.settings.replica_max_lag_seconds:
            metrics.DB_REPLICA_FALLBACKS.labels("lag").inc()
            return False
        return True

    def pick(self) -> _Replica | None:
        """A healthy replica, round robin; None: read the primary."""
        count = len(self.replicas)
        start = next(self._turn)
        for i in range(count):
            replica = self.replicas[(start + i) % count]
            if self._healthy(replica):
                return replica
        return None


_router: Router | None = None
_router_lock = threading.Lock()


def router() -> Router:
    global _router
    settings = get_settings()
    if _router is None or _router.pid != os.getpid() or _router.settings is not settings:
        with _router_lock:
            if _router is None or _router.pid != os.getpid() or _router.settings is not settings:
                if _router is not None:
                    _router.dispose()
                _router = Router(settings)
    return _router


def recently_wrote(user_id) -> bool:
    """The user changed something within REPLICA_READ_AFTER_WRITE_SECONDS: their reads stay on the primary."""
    from shared.redis_clients import cache_redis

    try:
        return bool(cache_redis().exists(RW_KEY.format(user=user_id)))
    except Exception:  # noqa: BLE001 (Redis down: the primary is always right)
        return True


def replica_session(*, user_id=None) -> Session | None:
    """A session on a healthy replica for reads that tolerate REPLICA_MAX_LAG_SECONDS of lag
    (the caller closes it; never for writes), or None: read the primary (no replica configured
    or healthy, or `user_id` wrote within REPLICA_READ_AFTER_WRITE_SECONDS)."""
    from shared import metrics

    if not get_settings().database_replica_url:
        return None
    if user_id is not None and recently_wrote(user_id):
        metrics.DB_REPLICA_FALLBACKS.labels("read_after_write").inc()
        return None
    replica = router().pick()
    if replica is None:
        return None
    return Session(bind=replica.engine, autoflush=False, expire_on_commit=False)


@contextmanager
def reading(*, primary: Session, user_id=None) -> Iterator[Session]:
    """A replica's session for the block (closed at its end), else `primary` itself (report jobs and exports)."""
    session = replica_session(user_id=user_id)
    if session is None:
        yield primary
        return
    try:
        yield session
    finally:
        session.close()


# -- read-your-writes: the rw:{user} marks ----------------------------------------------------------


def _collect(session: Session, _flush_context, _instances=None) -> None:
    """Before a flush: whose rows it writes; their rw:{user} marks follow the commit (shared.jobs.outbox)."""
    from shared.jobs import outbox
    from shared.models import User

    if not get_settings().database_replica_url:
        return  # no replica: nobody's reads need steering
    users = set()
    for obj in itertools.chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, User):
            users.add(obj.id)
        else:
            owner = getattr(obj, "user_id", None)
            if isinstance(owner, uuid.UUID):
                users.add(owner)
    if users:
        # After the commit, never on a rollback (savepoints included): the outbox decides.
        outbox.after_commit(session, lambda: mark_users(users))


def mark_users(users) -> None:
    """Keep these users' reads on the primary for REPLICA_READ_AFTER_WRITE_SECONDS (never raises)."""
    from shared.redis_clients import cache_redis

    settings = get_settings()
    try:
        with cache_redis().pipeline(transaction=False) as pipe:
            for user in users:
                # In milliseconds: redis-py refuses a float `ex` (the setting is a float), and would
                # otherwise round 0.5 s down to none at all.
                pipe.set(RW_KEY.format(user=user), 1, px=max(1, int(settings.replica_read_after_write_seconds * 1000)))
            pipe.execute()
    except Exception as exc:  # noqa: BLE001 (Redis down: recently_wrote says True anyway)
        log.warning("read-after-write marks not set: %s", exc)


# Every session of every process that imports this module (api and workers do): a commit that
# changed ORM rows with a user_id (or a User) marks rw:{user}; a no-op without replicas. A Core
# UPDATE the ORM does not see (a job's transition) is not marked: job polls read the primary anyway.
event.listen(Session, "before_flush", _collect)
