"""Helpers for tests: schema reset, users and tokens, and real worker and server processes."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import jsonschema
import redis
import requests
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shared import db, migrate, redis_clients
from shared.celery_app import app as celery_app
from shared.celery_app import configure
from shared.jobtypes import get_job_type
from shared.models import Base, User
from shared.passwords import hash_password
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
_PASSWORD_HASH = None
QUEUES = "interactive,sync,reports,maintenance"


def refresh_settings():
    """Re-read the environment into settings, engine, Celery app and Redis clients."""
    get_settings.cache_clear()
    db.reset_engine()
    redis_clients.reset()
    configure(celery_app, get_settings())


@contextmanager
def environment(env: dict[str, str]):
    """These variables for the block (processes started in it inherit them), with the settings
    re-read; both restored after it."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    refresh_settings()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        refresh_settings()


def reset_schema() -> None:
    """Drop everything and migrate from zero: the migrations are what is tested."""
    refresh_settings()
    engine = db.get_engine()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        else:
            Base.metadata.drop_all(connection)
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    migrate.upgrade()


def empty_audit_log_sqlite(connection) -> None:
    """SQLite cannot switch a trigger off: a checkpoint row covering every row (itself too) lets them go."""
    connection.execute(text("INSERT INTO audit_log (seq, created_at, actor_kind, action, resource_type, details, "
                            "checkpoint_seq, row_hash) VALUES (-1, '2000-01-01 00:00:00', 'system', 'test.reset', "
                            "'audit_log', '{}', 9000000000000000000, '')"))
    connection.execute(text("DELETE FROM audit_log WHERE seq <> -1"))
    connection.execute(text("DELETE FROM audit_log"))


def truncate_all() -> None:
    """Empty every table, and drop queued messages that would run against the next test.

    A worker may still be finishing a job of the test that just ended, so a deadlock
    between its row locks and TRUNCATE is retried rather than failing the next test.
    """
    celery_app.control.purge()
    engine = db.get_engine()
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    for attempt in range(10):
        try:
            with engine.begin() as connection:
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SET LOCAL lock_timeout = '5s'"))
                    # audit_log's trigger refuses TRUNCATE; tests empty it as a superuser may.
                    connection.execute(text("SET LOCAL session_replication_role = replica"))
                    connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
                else:
                    empty_audit_log_sqlite(connection)
                    for table in tables:
                        connection.execute(text(f"DELETE FROM {table}"))
            return
        except OperationalError:
            if attempt == 9:
                raise
            time.sleep(0.3)


@contextmanager
def rolled_back():
    """Every session this process opens, on one connection inside a transaction that is rolled
    back at the end; the code's own commits and rollbacks become savepoints (as warehouse's
    tests do). Only for tests without other processes: a worker would not see the rows.

    Yields a function that says whether the rollback still covers everything: a test that
    switched the engine (refresh_settings) wrote outside it, and needs the TRUNCATE.
    """
    engine = db.get_engine()
    factory = db._session_factory
    configured = dict(factory.kw)
    connection = engine.connect()
    outer = connection.begin()
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield lambda: db._session_factory is factory and db.get_engine() is engine
    finally:
        factory.kw.clear()
        factory.kw.update(configured)
        outer.rollback()
        connection.close()


def truncate_jobs() -> None:
    """Empty the jobs and what they made, keeping users (benchmarks reuse them)."""
    with db.get_engine().begin() as connection:
        connection.execute(text("DELETE FROM tasks"))
        connection.execute(text("DELETE FROM jobs"))


def flush_redis() -> None:
    settings = get_settings()
    for url in {settings.broker_url, settings.cache_redis_url, settings.ratelimit_storage_url}:
        redis.Redis.from_url(url).flushdb()


def create_user(email: str, *, role: str = "user", timezone: str = "UTC") -> User:
    global _PASSWORD_HASH
    _PASSWORD_HASH = _PASSWORD_HASH or hash_password(PASSWORD)  # argon2 is slow on purpose
    with db.session_scope() as session:
        user = User(email=email, password_hash=_PASSWORD_HASH, role=role, timezone=timezone)
        session.add(user)
    return user


def auth_headers(user: User) -> dict:
    from api.security import issue_access_token

    return {"Authorization": f"Bearer {issue_access_token(user, get_settings())}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


class ManagedProcess:
    """A child process with its output in a log file, stopped on teardown."""

    name = "process"
    cwd: Path = ROOT

    def __init__(self, env: dict | None = None):
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log_path = Path(f"/tmp/assistant-test-{self.name}-{uuid.uuid4().hex[:8]}.log")

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 60.0):
        if self.proc is not None and self.proc.poll() is None:
            # A second process would be orphaned, consuming the queues for the rest of the session.
            raise AssertionError(f"{self.name} is already running (pid {self.proc.pid})")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.command(), cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(lambda: self._alive_or_raise() and self.ready(), timeout=timeout, interval=0.2,
                       message=f"{self.name} to start")
        except AssertionError:
            self.stop()
            raise AssertionError(f"{self.name} did not start:\n{self.log_tail()}")
        return self

    def _alive_or_raise(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        return True

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def kill(self):
        """SIGKILL the whole process group, as an OOM killer or a pulled plug would."""
        self.stop(sig=signal.SIGKILL)


class WorkerProcess(ManagedProcess):
    name = "worker"

    def __init__(self, env: dict | None = None, queues: str = QUEUES, concurrency: int = 2):
        self.metrics_port = free_port()  # GET http://127.0.0.1:<metrics_port>/metrics
        super().__init__({"WORKER_METRICS_PORT": str(self.metrics_port), **(env or {})})
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.queues = queues
        self.concurrency = concurrency
        self._pauses = 0

    @contextmanager
    def paused(self):
        """Stop this worker while the block runs, so another may take its jobs; nested pauses
        (a test's fixture inside a module's) restart it only when the outermost one ends."""
        self._pauses += 1
        if self._pauses == 1:
            self.stop()
        try:
            yield self
        finally:
            self._pauses -= 1
            if self._pauses == 0:
                self.start()

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", "shared.celery_app", "worker",
            "--queues", self.queues, "--concurrency", str(self.concurrency), "--pool", "prefork",
            "--hostname", self.hostname, "--loglevel", os.environ.get("TEST_WORKER_LOGLEVEL", "INFO"), "-O", "fair", "--without-mingle",
            "--without-gossip",
        ]

    def ready(self) -> bool:
        try:
            return bool(celery_app.control.ping(destination=[self.hostname], timeout=0.5))
        except Exception:  # the broker restarting under a fault test: not ready yet
            return False

    def active_tasks(self) -> list[dict]:
        replies = celery_app.control.inspect(destination=[self.hostname], timeout=1.0).active() or {}
        return replies.get(self.hostname, [])


class BeatProcess(ManagedProcess):
    """`celery -A scheduler beat` with a schedule file of its own."""

    name = "beat"

    def __init__(self, env: dict | None = None):
        super().__init__(env)
        self.schedule_file = f"/tmp/assistant-test-beat-{uuid.uuid4().hex[:8]}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "scheduler", "beat", "--loglevel", "INFO",
                "--schedule", self.schedule_file]

    def ready(self) -> bool:
        return "beat: Starting" in self.log_tail()


class ServerProcess(ManagedProcess):
    """gunicorn with the production config, on a free port."""

    name = "gunicorn"

    def __init__(self, env: dict | None = None):
        self.port = free_port()
        super().__init__({"PORT": str(self.port), "WEB_CONCURRENCY": "2", "GUNICORN_ACCESSLOG": "", **(env or {})})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--config", "ops/gunicorn.conf.py", "api:create_app()"]

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False


class EventsProcess(ServerProcess):
    """The events process as the Procfile runs it: gunicorn -k gevent with its own config."""

    name = "events"

    def __init__(self, env: dict | None = None):
        super().__init__(env)
        self.env["EVENTS_PORT"] = str(self.port)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--config", "ops/gunicorn_events.conf.py", "api:create_app()"]


def sse_events(response, *, stop_after: int | None = None):
    """Yield (id, event, data) from a streamed response; stop after `stop_after` events of type token."""
    event_id = kind = None
    data: list[str] = []
    tokens = 0
    for line in response.iter_lines(decode_unicode=True):
        if line is None:
            continue
        if line == "":
            if kind is not None:
                yield event_id, kind, json.loads("\n".join(data) or "{}")
                if kind == "token":
                    tokens += 1
                    if stop_after is not None and tokens >= stop_after:
                        return
                if kind == "done":
                    return
            event_id = kind = None
            data = []
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])


def wait_for_job(session_or_client, job_id: str, headers: dict, *, timeout: float = 30.0, base_url: str = "") -> dict:
    """Long-poll a job over HTTP until it is finished; return it."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        response = session_or_client.get(f"{base_url}/v1/jobs/{job_id}?wait=5", headers=headers)
        assert response.status_code == 200, response.text
        job = response.json() if callable(response.json) else response.json
        if job["status"] in ("succeeded", "failed", "canceled"):
            check_result(job)
            return job
    raise AssertionError(f"job {job_id} did not finish in {timeout}s: {job}")


def check_result(job: dict) -> None:
    """A succeeded job's result is what its type declares (JobType.result_schema, in /openapi.json):
    every test that waits for a job holds the real result to its type's schema."""
    if job["status"] == "succeeded":
        schema = get_job_type(job["type"]).result_schema
        jsonschema.validate(job["result"], schema, cls=jsonschema.Draft202012Validator)
