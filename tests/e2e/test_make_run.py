"""`make run` on PostgreSQL + Redis from a fresh clone, exactly as README.md tells an operator.

A copy of the repository's files with no `var/` (and no `.venv`: `VENV=` points make at the
suite's own environment, so nothing is reinstalled), `DATABASE_URL` and `REDIS_URL` in its
`.env` (not in the environment: every entry point must read the file), and `make run`:
honcho, the Procfile, and web, worker, beat and Flower. The banner names that database, the
README tour runs against it, `assistant users create-admin` acts on it, `assistant smoke`
passes and then fails with the worker stopped, and a minute on, after beat's first periodic
task, every process is still up.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import pytest
import requests
from sqlalchemy.engine import make_url

from shared.settings import REDIS_DATABASES
from tests.conftest import TEST_DATABASE_URL, TEST_REDIS_URL
from tests.e2e.test_tour import tour
from tests.support import ROOT, ManagedProcess, free_port, wait_until

pytestmark = pytest.mark.worker

VENV = Path(sys.prefix)
PROCESSES = {  # what each Procfile line runs, as it shows in the process table
    "web": ("gunicorn",),
    "worker": ("celery", " worker"),
    "beat": ("celery", " beat"),
    "flower": ("celery", " flower"),
}
SMOKE_PASSWORD = "smoke-test-password"


def make_run_redis_url() -> str:
    """Three Redis databases of its own, apart from the suite's three (n, n+1, n+2).

    The top three of a stock Redis, or, when the suite's own are up there, the three below
    them; TEST_MAKERUN_REDIS_URL overrides.
    """
    if os.environ.get("TEST_MAKERUN_REDIS_URL"):
        return os.environ["TEST_MAKERUN_REDIS_URL"]
    parts = urlsplit(TEST_REDIS_URL)
    suite = int(parts.path.lstrip("/") or 0)
    db = REDIS_DATABASES - 3
    if abs(db - suite) <= 2:
        db = suite - 3
    assert db >= 1, f"no room for three more Redis databases beside {TEST_REDIS_URL}: set TEST_MAKERUN_REDIS_URL"
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


def fresh_clone(target: Path) -> Path:
    """The repository's files as a clone has them (tracked, and new ones not ignored), nothing else."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)  # mtimes kept: make must find the environment up to date
    assert not (target / "var").exists()
    return target


@pytest.fixture
def database():
    """An empty PostgreSQL database of this test's own, beside the suite's."""
    import psycopg2

    url = make_url(TEST_DATABASE_URL).set(database=f"{make_url(TEST_DATABASE_URL).database}_makerun")
    admin = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                             dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{url.database}"')
    yield url.render_as_string(hide_password=False)
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def redis_url():
    import redis

    url = make_run_redis_url()
    db = int(urlsplit(url).path.lstrip("/"))
    for offset in range(3):
        redis.Redis.from_url(url, db=db + offset).flushdb()
    return url


class MakeRun(ManagedProcess):
    """`make run VENV=...` in a fresh clone, from a shell that never activated the environment."""

    name = "make-run-postgres"

    def __init__(self, clone: Path, database_url: str, redis_url: str):
        self.cwd = clone
        (clone / ".env").write_text(f"DATABASE_URL={database_url}\nREDIS_URL={redis_url}\n")
        self.database_url = database_url
        self.port, self.flower_port = free_port(), free_port()
        super().__init__()
        bin_dir = str(VENV / "bin")
        self.env = {
            "PATH": os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != bin_dir),
            "HOME": os.environ.get("HOME", "/root"),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "PORT": str(self.port),
            "FLOWER_PORT": str(self.flower_port),
            "WORKER_METRICS_PORT": str(free_port()),
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return ["make", "run", f"VENV={VENV}"]

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/ready", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def processes(self) -> dict[str, psutil.Process]:
        """Each Procfile process that is running under this make, by its Procfile name."""
        found = {}
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                command = " ".join(child.cmdline())
                if child.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
                    continue
            except psutil.NoSuchProcess:
                continue
            for name, words in PROCESSES.items():
                # The first of a process family (gunicorn's master, the worker's main process).
                if name not in found and all(word in command for word in words):
                    found[name] = child
        return found


def smoke(run: MakeRun, *extra: str) -> subprocess.CompletedProcess:
    env = {**run.env, "SMOKE_PASSWORD": SMOKE_PASSWORD, "SMOKE_EMAIL": f"smoke-{uuid.uuid4().hex[:6]}@example.com"}
    return subprocess.run([str(VENV / "bin" / "assistant"), "smoke", "--api", run.url, *extra], cwd=run.cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def test_make_run_on_postgres_and_redis_from_a_fresh_clone(tmp_path, database, redis_url):
    stamp = VENV / ".installed"
    stale = [name for name in ("setup.cfg", "pyproject.toml", "requirements/test.txt")
             if (ROOT / name).exists() and (ROOT / name).stat().st_mtime > stamp.stat().st_mtime]
    assert not stale, f"{stale} changed since {VENV} was installed: run `make install` first"
    clone = fresh_clone(tmp_path / "clone")
    started = time.monotonic()
    run = MakeRun(clone, database, redis_url).start(timeout=180)
    try:
        wait_until(lambda: set(run.processes()) == set(PROCESSES), timeout=60, interval=0.5,
                   message=f"web, worker, beat and Flower to run\n{run.log_tail()}")
        tour(run.url)

        # The operator's commands act on the database in .env too, not on an SQLite file.
        created = subprocess.run([str(VENV / "bin" / "assistant"), "users", "create-admin", "ops@example.com",
                                  "--password-stdin"], input="an admin password\n", cwd=clone, env=run.env,
                                 capture_output=True, text=True, timeout=60)
        assert created.returncode == 0 and "admin ops@example.com created" in created.stdout, created.stderr
        assert role_in(database, "ops@example.com") == "admin"
        assert not (clone / "var" / "assistant.db").exists()

        # Compression, as the curl asks for it.
        headers = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "-H", "Accept-Encoding: gzip",
                                  f"{run.url}/openapi.json"], capture_output=True, text=True, timeout=30).stdout
        assert "content-encoding: gzip" in headers.lower(), headers

        passed = smoke(run)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        for step in ("health", "ready", "sign in", "submit quick add", "job finished", "clean up"):
            assert f"ok    {step}" in passed.stdout
        assert "(account created)" in passed.stdout and "smoke test passed" in passed.stdout

        # Beat's first periodic task (the sweeper, every 30 s) reaches the worker.
        wait_until(lambda: "scheduler.sweep" in run.log_tail(2000), timeout=120, interval=1,
                   message="beat's first periodic task to run on the worker")

        # The worker stopped (SIGSTOP: under honcho a worker that exits takes the others with it).
        worker = run.processes()["worker"]
        family = [worker, *worker.children(recursive=True)]
        for process in family:
            process.send_signal(signal.SIGSTOP)
        try:
            failed = smoke(run, "--timeout", "5")
        finally:
            for process in family:
                process.send_signal(signal.SIGCONT)
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert "ok    ready" in failed.stdout
        assert "FAIL  job finished" in failed.stderr and "still queued after 5 s" in failed.stderr

        # A minute on, every process is still up (beat used to die at once on a fresh clone).
        time.sleep(max(0.0, 60 - (time.monotonic() - started)))
        up = run.processes()
        assert set(up) == set(PROCESSES), f"down: {set(PROCESSES) - set(up)}\n{run.log_tail(200)}"
        assert run.proc.poll() is None
        assert requests.get(f"http://127.0.0.1:{run.flower_port}/healthcheck", timeout=5).text == "OK"
        assert (clone / "var" / "celerybeat-schedule").exists() or list((clone / "var").glob("celerybeat-schedule*"))
    finally:
        run.stop(timeout=60)
    url = make_url(database)
    banner = f"Personal Assistant on PostgreSQL at {url.host}:{url.port or 5432}/{url.database} and Redis at {redis_url}"
    assert banner in run.log_tail(4000)
    # Console lines under make run, not JSON (production's default).
    assert not [line for line in run.log_tail(4000).splitlines() if '{"event"' in line or '"level":' in line]


def role_in(database_url: str, email: str) -> str | None:
    import psycopg2

    with psycopg2.connect(database_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT role FROM users WHERE email = %s", (email,))
        row = cursor.fetchone()
    connection.close()
    return row and row[0]
