"""Test setup: real PostgreSQL and Redis, in a database and Redis numbers of their own.

TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/assistant_test) and
TEST_REDIS_URL (default redis://127.0.0.1:6379/10, which also takes 11 and 12) choose
them; `python -m tests.preflight` (run by `make test`) checks they answer and creates
the database. Under pytest-xdist each worker process takes a database, Redis numbers and a
data directory of its own, below those (see XDIST_WORKER). Tables are emptied between tests, not rolled back: real worker processes
write to the same database through their own connections.

Tests marked `fast` need none of it (no PostgreSQL, no Redis, no worker): they opt out of
the reset, and `make test-fast` runs just them with both servers unreachable.
"""
from __future__ import annotations

import os
import uuid

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/assistant_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/10")
TEST_DATA_DIR = os.environ.get("TEST_DATA_DIR", "/tmp/assistant-test-data")

# Under pytest-xdist (`-n 2`) each worker process of the suite has servers' state of its own:
# gwN gets the database <name>_gwN (made by _database), the three Redis numbers 3N below the
# suite's (10-12, then 7-9, ...), and its own data directory. Its Celery worker and servers
# inherit them, so no process of one xdist worker ever takes another's jobs or rows.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if XDIST_WORKER:
    from urllib.parse import urlsplit, urlunsplit

    from sqlalchemy.engine import make_url

    _index = int(XDIST_WORKER.removeprefix("gw"))
    _url = make_url(TEST_DATABASE_URL)
    TEST_DATABASE_URL = _url.set(database=f"{_url.database}_{XDIST_WORKER}").render_as_string(hide_password=False)
    _parts = urlsplit(TEST_REDIS_URL)
    _redis_db = int(_parts.path.lstrip("/") or 0) - 3 * _index
    assert _redis_db >= 1, f"no three Redis databases for xdist worker {XDIST_WORKER} below {TEST_REDIS_URL}"
    TEST_REDIS_URL = urlunsplit((_parts.scheme, _parts.netloc, f"/{_redis_db}", "", ""))
    TEST_DATA_DIR = f"{TEST_DATA_DIR}-{XDIST_WORKER}"

# Before anything of ours is imported: the settings are read from the environment once.
os.environ.update(
    APP_ENV="development",
    DATABASE_URL=TEST_DATABASE_URL,
    REDIS_URL=TEST_REDIS_URL,
    SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
    JWT_SECRET="test-jwt-secret-0123456789abcdef0123456789",
    ERASURE_JOURNAL_KEY="test-erasure-journal-key-0123456789abcdef",
    AUDIT_CHAIN_KEY="test-audit-chain-key-0123456789abcdef0123",
    RATE_LIMIT_ENABLED="false",
    LOG_LEVEL="WARNING",
    DATA_DIR=TEST_DATA_DIR,
)
for _name in ("BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URL"):
    os.environ.pop(_name, None)

from shared.celery_app import app as celery_app  # noqa: E402
from tests.support import (  # noqa: E402
    auth_headers,
    create_user,
    flush_redis,
    reset_schema,
    rolled_back,
    truncate_all,
)


def _create_database() -> None:
    """The xdist worker's own database, beside the one `python -m tests.preflight` made."""
    import psycopg2
    from psycopg2 import sql
    from sqlalchemy.engine import make_url

    url = make_url(TEST_DATABASE_URL)
    connection = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                                  dbname="postgres", connect_timeout=5)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
    connection.close()


@pytest.fixture(scope="session")
def _database():
    if XDIST_WORKER:
        _create_database()
    reset_schema()
    flush_redis()
    yield


def _rolls_back(request) -> bool:
    """An in-process API test: tests/api, the `client` fixture, and no other process.

    What a worker or server process reads and writes is on connections of its own, so a test
    with one (a fixture named like `worker`/`live_server`/`api_server`, or the `worker`
    marker, which a test starting a process in its body must carry) is emptied with TRUNCATE.
    """
    node = request.node
    if node.get_closest_marker("truncate") or node.get_closest_marker("worker"):
        return False
    names = request.fixturenames
    return (node.nodeid.startswith("tests/api/") and "client" in names
            and not any(part in name for name in names for part in ("worker", "server", "process")))


@pytest.fixture(autouse=True)
def _clean_tables(request):
    """Every test starts from empty tables and queues, unless it is marked `fast`.

    In-process API tests (see _rolls_back) run inside a transaction rolled back at the end;
    the rest, and tests marked `truncate`, are emptied with TRUNCATE, which sees what other
    processes wrote.
    """
    if request.node.get_closest_marker("fast"):
        yield
        return
    request.getfixturevalue("_database")
    if not _rolls_back(request):
        yield
        truncate_all()
        return
    with rolled_back() as still_covered:
        yield
        covered = still_covered()
    if covered:
        celery_app.control.purge()  # what the test sent never reaches a later test's worker
    else:
        truncate_all()


@pytest.fixture
def settings():
    from shared.settings import get_settings

    return get_settings()


@pytest.fixture
def app(settings):
    from api import create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def user():
    """A signed-up user (password "correct horse battery")."""
    return create_user(f"user-{uuid.uuid4().hex[:8]}@example.com")


@pytest.fixture
def other_user():
    return create_user(f"other-{uuid.uuid4().hex[:8]}@example.com")


@pytest.fixture
def admin():
    return create_user(f"admin-{uuid.uuid4().hex[:8]}@example.com", role="admin")


@pytest.fixture
def headers(user):
    """Authorization headers of `user`."""
    return auth_headers(user)


@pytest.fixture
def other_headers(other_user):
    return auth_headers(other_user)


@pytest.fixture
def admin_headers(admin):
    return auth_headers(admin)


@pytest.fixture(scope="session")
def worker():
    """A real Celery worker process (prefork, 2 children) consuming every queue."""
    from tests.support import WorkerProcess

    process = WorkerProcess()
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def live_server(worker):
    """gunicorn serving the api on a free port, in front of the real worker."""
    from tests.support import ServerProcess

    server = ServerProcess()
    server.start()
    yield server
    server.stop()


# The files that take half a minute or more (measured with --durations), longest first:
# under xdist (--dist loadfile --no-loadscope-reorder) they are handed out first, so no
# xdist worker is left running one of them alone at the end while the other is idle.
LONGEST_FILES = (
    "tests/workers/test_restores.py",
    "tests/e2e/test_notifications.py",
    "tests/clients/test_web_client.py",
    "tests/workers/test_google.py",
    "tests/e2e/test_chaos.py",
    "tests/api/test_schemathesis.py",
    "tests/e2e/test_make_run.py",
    "tests/ops/test_pitr.py",
    "tests/api/test_job_events.py",
    "tests/workers/test_push.py",
    "tests/workers/test_object_storage.py",
    "tests/clients/test_sdk.py",
    "tests/ops/test_failover.py",
    "tests/scheduler/test_sweeper.py",
    "tests/shared/test_replicas.py",
    "tests/workers/test_agents.py",
)


def pytest_collection_modifyitems(config, items):
    if not XDIST_WORKER:
        return
    rank = {path: n for n, path in enumerate(LONGEST_FILES)}
    # A stable sort: within a file, and among the other files, the order stays as collected.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(LONGEST_FILES)))
