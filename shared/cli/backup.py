"""Database backups: `assistant backup list|create|verify|restore` (the services are shared.backups)."""
from __future__ import annotations

import json
import uuid

import click
from sqlalchemy import select

from shared.cli.db import safe_url
from shared.db import session_scope
from shared.settings import get_settings


@click.group()
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
    from shared.backups import BackupError, back_up_now
    from shared.db import get_engine

    with session_scope() as session:
        try:
            made = back_up_now(session=session, engine=get_engine(), settings=get_settings())
        except BackupError as exc:
            raise click.ClickException(str(exc))
        click.echo(json.dumps(made, indent=2))


@backup.command("verify")
@click.argument("backup_id", type=click.UUID, required=False)
def backup_verify(backup_id: uuid.UUID | None) -> None:
    """Restore a backup (default: the newest) into a scratch database and compare; exits 1 on a mismatch."""
    from shared.backups import BackupError, NoBackup, verify_and_record
    from shared.db import get_engine

    with session_scope() as session:
        try:
            target, outcome = verify_and_record(session=session, engine=get_engine(), settings=get_settings(),
                                                backup_id=backup_id)
        except NoBackup:
            raise click.ClickException("no such backup")
        except BackupError as exc:
            raise click.ClickException(f"VERIFICATION FAILED: {exc}")
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
    click.echo(f"restored {target.filename} into {safe_url(url)}")
