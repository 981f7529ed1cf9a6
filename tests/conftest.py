"""Test setup: real PostgreSQL and Redis, in a database and Redis numbers of their own.

TEST_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/assistant_test) and
TEST_REDIS_URL (default redis://127.0.0.1:6379/10, which also takes 11 and 12) choose
them; `python -m tests.preflight` (run by `make test`) checks they answer and creates
the database. Tables are emptied between tests, not rolled back: real worker processes
write to the same database through their own connections.
"""
from __future__ import annotations

import os
import uuid

import pytest

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/assistant_test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/10")

# Before anything of ours is imported: the settings are read from the environment once.
os.environ.update(
    APP_ENV="development",
    DATABASE_URL=TEST_DATABASE_URL,
    REDIS_URL=TEST_REDIS_URL,
    SECRET_KEY="test-secret-key-0123456789abcdef0123456789",
    JWT_SECRET="test-jwt-secret-0123456789abcdef0123456789",
    ERASURE_JOURNAL_KEY="test-erasure-journal-key-0123456789abcdef",
    RATE_LIMIT_ENABLED="false",
    LOG_LEVEL="WARNING",
    DATA_DIR=os.environ.get("TEST_DATA_DIR", "/tmp/assistant-test-data"),
)
for _name in ("BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URL"):
    os.environ.pop(_name, None)

from tests.support import (  # noqa: E402
    auth_headers,
    create_user,
    flush_redis,
    reset_schema,
    truncate_all,
)


@pytest.fixture(scope="session", autouse=True)
def _database():
    reset_schema()
    flush_redis()
    yield


@pytest.fixture(autouse=True)
def _clean_tables(_database):
    yield
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
