"""gunicorn's threads share pooled database connections instead of opening their own."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import text

from shared import db
from tests.support import ServerProcess, auth_headers

CLIENTS = 32  # more than gunicorn's threads per process, so every thread is busy at once


def sessions_opened() -> int:
    """Connections ever opened to the test database (PostgreSQL 14+ counts them)."""
    with db.session_scope() as session:
        return session.execute(
            text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        ).scalar_one()


def burst(url: str, headers: dict) -> None:
    def client(_):
        with requests.Session() as http:
            for _ in range(10):
                assert http.get(f"{url}/v1/me", headers=headers, timeout=10).status_code == 200

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(client, range(CLIENTS)))


def test_a_busy_api_reuses_its_connections(user):
    headers = auth_headers(user)
    before = sessions_opened()
    server = ServerProcess(env={"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "16",
                                "GUNICORN_MAX_REQUESTS": "0"}).start()  # no worker restarts midway
    try:
        for _ in range(6):
            burst(server.url, headers)
        opened = sessions_opened() - before
    finally:
        server.stop()

    # Pooled connections stay open: however many bursts, at most one per thread. A pool
    # smaller than the threads closes what it cannot keep and opens it again on the next
    # burst: dozens of new PostgreSQL backends each time.
    assert opened <= 2 * 16, f"{opened} connections opened for 2 processes of 16 threads"
