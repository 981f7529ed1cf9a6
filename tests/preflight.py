"""Before the suite: PostgreSQL and Redis must answer, and the test database must exist.

Fails with a message that says how to provide them; the suite never skips silently.
"""
from __future__ import annotations

import os
import sys

import psycopg2
import redis
from psycopg2 import sql
from sqlalchemy.engine import make_url

DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/assistant_test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/10")

HOW = """
The test suite runs on real PostgreSQL and Redis. Provide them, then run `make test` again:
  - PostgreSQL at {db} (override with TEST_DATABASE_URL); on Debian:
      pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start
  - Redis at {redis} (override with TEST_REDIS_URL); for example:
      redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
`bash .ci/run` starts both when they are installed but stopped.
"""


def main() -> int:
    url = make_url(DATABASE_URL)
    problems = []
    try:
        connection = psycopg2.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password,
            dbname="postgres", connect_timeout=5,
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(url.database)))
                print(f"preflight: created database {url.database}")
        connection.close()
    except psycopg2.Error as exc:
        problems.append(f"PostgreSQL: {exc}".strip())
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        problems.append(f"Redis: {exc}")
    if problems:
        print("preflight failed:\n  " + "\n  ".join(problems), file=sys.stderr)
        print(HOW.format(db=url.render_as_string(hide_password=True), redis=REDIS_URL), file=sys.stderr)
        return 1
    print("preflight: PostgreSQL and Redis answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
