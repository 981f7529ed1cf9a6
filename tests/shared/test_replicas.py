"""Read replicas against a real streaming replica: a throwaway primary on a free port and a
standby made from it with `pg_basebackup -R`, one pair for the module (temporary directories,
free ports: sessions sharing the machine never clash)."""
from __future__ import annotations

import subprocess
import time

import pytest

from bench.servers import ThrowawayPostgres, as_postgres, pg_bin, query
from shared import metrics, replicas
from shared.migrate import upgrade
from tests.factories import make_task
from tests.support import auth_headers, create_user, environment, wait_until

pytestmark = pytest.mark.truncate

MAX_LAG, READ_AFTER_WRITE = "1", "2"


@pytest.fixture(scope="module")
def pair():
    try:
        pg_bin("pg_basebackup")
    except RuntimeError as exc:
        pytest.skip(f"PostgreSQL's server binaries are missing ({exc})")
    primary = ThrowawayPostgres(settings={"fsync": "off", "max_connections": "100", "wal_level": "replica",
                                          "max_wal_senders": "5"}).init()
    standby = ThrowawayPostgres(settings={"fsync": "off", "max_connections": "100", "hot_standby": "on"})
    try:
        # -c fast: a checkpoint now, not a spread one (which took 100 s here)
        subprocess.run(as_postgres([pg_bin("pg_basebackup"), "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
                                    "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"]),
                       check=True, capture_output=True, timeout=120)
        standby.start()
        assert query(standby.port, "SELECT pg_is_in_recovery()") == [(True,)]
        env = {"DATABASE_URL": primary.url, "DATABASE_REPLICA_URL": standby.url,
               "REPLICA_MAX_LAG_SECONDS": MAX_LAG, "REPLICA_READ_AFTER_WRITE_SECONDS": READ_AFTER_WRITE}
        with environment(env):
            upgrade()
            yield primary, standby
    finally:
        standby.destroy()
        primary.destroy()


@pytest.fixture
def client(pair):
    from api import create_app

    app = create_app()
    app.config["TESTING"] = True
    return app.test_client()


def replica_commits(port: int) -> int:
    return query(port, "SELECT xact_commit FROM pg_stat_database WHERE datname = 'assistant'")[0][0]


def caught_up(primary, standby) -> None:
    lsn = query(primary.port, "SELECT pg_current_wal_lsn()")[0][0]
    wait_until(lambda: query(standby.port, f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'")[0][0], timeout=20,
               message="the replica to replay the primary's writes")


def titles(client, headers) -> list[str]:
    response = client.get("/v1/tasks?status=all&limit=100", headers=headers)
    assert response.status_code == 200, response.json
    return [t["title"] for t in response.json["items"]]


def quiet(user) -> None:
    """Past the user's read-after-write window."""
    wait_until(lambda: not replicas.recently_wrote(user.id), timeout=10, message="rw mark to expire")


def test_list_reads_reach_the_replica_and_a_writer_reads_the_primary(pair, client):
    primary, standby = pair
    user = create_user("replica-reader@example.com")
    headers = auth_headers(user)
    make_task(user, title="replicated")
    caught_up(primary, standby)
    quiet(user)
    before = replica_commits(standby.port)

    for _ in range(10):
        assert titles(client, headers) == ["replicated"]

    wait_until(lambda: replica_commits(standby.port) >= before + 10, timeout=15,
               message="the replica's pg_stat_database to count the reads")

    # Read-your-writes: with the replica unable to have it (replay paused), the writer still sees it.
    query(standby.port, "SELECT pg_wal_replay_pause()")
    try:
        [task] = client.get("/v1/tasks?status=all", headers=headers).json["items"]
        renamed = client.patch(f"/v1/tasks/{task['id']}", headers=headers, json={"title": "mine, just now"})
        assert renamed.status_code == 200, renamed.json
        assert titles(client, headers) == ["mine, just now"]  # the replica still says "replicated"
        assert query(standby.port, "SELECT title FROM tasks") == [("replicated",)]
    finally:
        query(standby.port, "SELECT pg_wal_replay_resume()")


def table_scans(port: int, table: str) -> int:
    """Scans of `table` that this server ran itself (a standby counts its own reads)."""
    [(count,)] = query(port, "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                             f"WHERE relname = '{table}'")
    return count


LISTS = {"/v1/mail/messages": "mail_messages", "/v1/calendar/events": "calendar_events", "/v1/memories": "memories",
         "/v1/threads": "agent_threads", "/v1/devices": "devices", "/v1/webhooks": "webhooks",
         "/v1/tasks/{task}/completions": "task_completions"}


def test_every_plain_list_reads_the_replica(pair, client):
    """The API's plain lists (not job polls, which read the primary or the status cache)."""
    primary, standby = pair
    user = create_user("replica-lists@example.com")
    headers = auth_headers(user)
    task = make_task(user, title="listed")
    caught_up(primary, standby)
    quiet(user)
    before = {table: table_scans(standby.port, table) for table in LISTS.values()}
    for path in LISTS:
        for _ in range(3):
            response = client.get(path.format(task=task.id), headers=headers)
            assert response.status_code == 200, response.json

    def unread():  # the standby's statistics are flushed about once a second
        return [path for path, table in LISTS.items() if table_scans(standby.port, table) < before[table] + 3]

    wait_until(lambda: not unread(), timeout=15, message="every list to read the replica")


def test_a_replica_paused_past_the_limit_sends_reads_to_the_primary(pair, client):
    primary, standby = pair
    user = create_user("replica-lag@example.com")
    headers = auth_headers(user)
    caught_up(primary, standby)
    query(standby.port, "SELECT pg_wal_replay_pause()")
    try:
        make_task(user, title="only on the primary")
        quiet(user)
        time.sleep(float(MAX_LAG) + 1.2)  # the replica falls behind past the limit; the lag cache expires
        fallbacks = metrics.DB_REPLICA_FALLBACKS.labels("lag")._value.get()

        assert titles(client, headers) == ["only on the primary"]
        assert metrics.DB_REPLICA_FALLBACKS.labels("lag")._value.get() > fallbacks
    finally:
        query(standby.port, "SELECT pg_wal_replay_resume()")
    caught_up(primary, standby)


def test_a_stopped_replica_costs_no_request_an_error(pair, client):
    primary, standby = pair
    user = create_user("replica-down@example.com")
    headers = auth_headers(user)
    make_task(user, title="still listed")
    caught_up(primary, standby)
    quiet(user)
    assert titles(client, headers) == ["still listed"]  # the pool holds a replica connection now

    standby.stop("immediate")
    try:
        time.sleep(replicas.LAG_CACHE_SECONDS + 0.2)
        down = metrics.DB_REPLICA_FALLBACKS.labels("down")._value.get()
        started = time.monotonic()
        for _ in range(5):
            assert titles(client, headers) == ["still listed"]
        assert time.monotonic() - started < 5  # one 1 s connect timeout at most, then marked down
        assert metrics.DB_REPLICA_FALLBACKS.labels("down")._value.get() == down + 1
    finally:
        standby.start()
