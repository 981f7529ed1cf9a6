"""Engine and sessions: one engine per process, sessions opened by the api per request
and by the worker per task, never inside business code."""
from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from shared.logging import redact_value
from shared.settings import get_settings

# A pooled connection to a server that vanished without a FIN (a host lost, a failover behind a
# moved address) is found dead in ~20 s instead of the kernel's 2 hours: keepalive probes after
# 10 s of silence (the address's new holder answers the first with a reset; a dead host answers
# none, 3 more at 3 s), and tcp_user_timeout (10 s) for a statement sent to a dead host (no probes
# go while sent data waits for an acknowledgement; the kernel would retransmit for 15 minutes).
# tests/ops/test_failover.py's proxy (a moved address) answers with these times.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 3, "keepalives_count": 3,
              "tcp_user_timeout": 10_000}

_engine: Engine | None = None
_engine_lock = threading.Lock()  # a gunicorn worker's threads all reach their first request at once
_engine_pid: int | None = None
_session_factory: sessionmaker[Session] | None = None


def _make_engine(url: str, settings) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        _configure_sqlite(engine)
    else:
        engine = _postgres_engine(url, settings)
    event.listen(engine, "handle_error", _redact_parameters)
    return engine


def _redact_parameters(context) -> None:
    """Redact a database error's parameters where the error is made."""
    # The error carries its statement's parameters into its text, and so into a log line's
    # traceback, a `%s` of the exception or Sentry: the same redaction as any log line.
    error = context.sqlalchemy_exception
    if error is not None and error.params:
        error.params = redact_value(error.params)


# A pooled connection idle for longer than this is pinged before use (see check_liveness).
PING_AFTER_IDLE_SECONDS = 1.0


def check_liveness(engine: Engine) -> None:
    """Hand out no pooled connection that PostgreSQL has closed, mostly without a round trip.

    A server that restarts or terminates a backend closes its socket, so a dead connection's
    socket reads as ready (EOF) while a live idle one has nothing to read: that check is a
    `select` with no wait. A connection idle for over PING_AFTER_IDLE_SECONDS is also pinged,
    for what a socket cannot show (an address moved to another host). pool_pre_ping pinged at
    every checkout: two of a job's round trips, and one of every request's. A dead connection
    is replaced at checkout (DisconnectionError makes the pool connect again).
    """

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_connection, record):
        if record is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _alive(dbapi_connection, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None:
            return  # just connected
        try:
            if dbapi_connection.closed or select.select([dbapi_connection], [], [], 0)[0]:
                raise DisconnectionError("the server closed the connection")
            if time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
                engine.dialect.do_ping(dbapi_connection)
        except DisconnectionError:
            raise
        except Exception as exc:  # the ping failed: psycopg2's errors, or the socket's
            raise DisconnectionError(str(exc)) from exc


def _postgres_engine(url: str, settings) -> Engine:
    engine = create_engine(
        url,
        # Size the pool to the threads that use it: a checkout beyond it opens a new
        # connection (a PostgreSQL backend fork), and closes it again on return.
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, **KEEPALIVES},
    )
    check_liveness(engine)  # survive a PostgreSQL restart without a 500 on the next request
    _count_pool(engine, settings)
    return engine


def _count_pool(engine: Engine, settings) -> None:
    """Keep the pool gauges (in use, overflow) as connections go out and come back."""
    from shared import metrics  # here, not at import: a worker chooses its metrics directory first

    database = engine.url.database or ""
    in_use, overflow = metrics.DB_POOL_IN_USE.labels(database), metrics.DB_POOL_OVERFLOW.labels(database)
    size = settings.db_pool_size
    metrics.DB_POOL_SIZE.labels(database).set(size)

    # checkedout() counts the connection being handed out, and still the one coming back.
    @event.listens_for(engine, "checkout")
    def _out(*_args):
        in_use.inc()
        overflow.set(max(0, engine.pool.checkedout() - size))

    @event.listens_for(engine, "checkin")
    def _back(*_args):
        in_use.dec()
        overflow.set(max(0, engine.pool.checkedout() - 1 - size))


def _configure_sqlite(engine: Engine) -> None:
    """WAL, and every transaction begun IMMEDIATE.

    A deferred transaction that reads and then writes fails with "database is locked" when
    another writer got in between; taking the write lock up front makes writers queue on
    the busy timeout instead.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine() -> Engine:
    """The engine of this process; a forked child builds its own instead of sharing sockets."""
    global _engine, _engine_pid, _session_factory
    engine = _engine
    if engine is not None and _engine_pid == os.getpid():
        return engine
    with _engine_lock:  # one engine (and one pool) per process, however many threads ask first
        dispose_after_fork()
        if _engine is None:
            settings = get_settings()
            if settings.embedded_database:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            _engine = _make_engine(settings.database_url, settings)
            _session_factory = sessionmaker(bind=_engine, expire_on_commit=False)
            _engine_pid = os.getpid()
        return _engine


def dispose_after_fork() -> None:
    """Drop the parent's pool in a forked child without closing the parent's sockets."""
    global _engine
    if _engine is not None and _engine_pid != os.getpid():
        _engine.dispose(close=False)
        _engine = None


def reset_engine() -> None:
    """Forget the engine (tests switch databases; workers call it after fork)."""
    global _engine, _session_factory
    if _engine is not None:
        _engine.dispose()
    _engine = None
    _session_factory = None


def new_session() -> Session:
    """A new session; the caller closes it."""
    get_engine()
    assert _session_factory is not None
    return _session_factory()


@contextlib.contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = new_session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
