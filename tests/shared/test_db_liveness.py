"""Pooled connections are checked before use without a round trip, and a dead one is replaced."""
from __future__ import annotations

import time

import psycopg2
import pytest
from sqlalchemy import create_engine, text

from shared.db import PING_AFTER_IDLE_SECONDS, check_liveness
from shared.settings import get_settings

pytestmark = pytest.mark.truncate  # connections of its own, outside the test's transaction


@pytest.fixture
def engine():
    url = get_settings().database_url
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL's pool")
    engine = create_engine(url, pool_size=1, max_overflow=0)
    check_liveness(engine)
    yield engine
    engine.dispose()


def observer():
    """A connection of its own that reads what the pooled one last ran."""
    connection = psycopg2.connect(get_settings().database_url.replace("postgresql+psycopg2:", "postgresql:"))
    connection.autocommit = True
    return connection


def last_query(watcher, pid: int) -> str:
    with watcher.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", (pid,))
        return cursor.fetchone()[0]


def test_a_connection_used_a_moment_ago_goes_out_without_a_ping(engine):
    watcher = observer()
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    # (Its return to the pool ended its transaction: ROLLBACK is the last thing it was sent.)
    with engine.connect():  # at once: the checkout sends nothing
        assert last_query(watcher, pid) == "ROLLBACK"

    time.sleep(PING_AFTER_IDLE_SECONDS + 0.3)
    with engine.connect():  # idle for longer: pinged at checkout
        assert last_query(watcher, pid) == "SELECT 1"
    watcher.close()


def test_a_connection_the_server_ended_is_replaced_at_checkout(engine):
    watcher = observer()
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with watcher.cursor() as cursor:  # a restart, a failover, an idle timeout: the backend is gone
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)  # its socket has been closed; still within the no-ping window

    with engine.connect() as connection:
        assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    watcher.close()
