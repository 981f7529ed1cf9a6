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
@click.option("--stored", is_flag=True, help="list the files in the backup storage, not the database's records "
                                             "(when the database is lost)")
def backup_list(limit: int, stored: bool) -> None:
    """Newest backups first, one line each."""
    from shared.backups import backup_to_dict
    from shared.models import Backup

    if stored:
        from shared.backups import stored as stored_backups

        for filename in stored_backups(settings=get_settings())[:limit]:
            click.echo(filename)
        return
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
            made = back_up_now(session=session, engine=get_engine(), settings=get_settings(), manual=True)
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
        click.echo(f"{target.filename}: ok, {outcome.tables} tables and {outcome.rows} rows match, "
                   f"{outcome.secrets} stored secrets decrypt with ENCRYPTION_KEYS")


@backup.command("restore")
@click.argument("backup_ref", metavar="BACKUP")
@click.option("--target-url", help="database to restore into (default: DATABASE_URL, the live one)")
@click.option("--yes", is_flag=True, help="confirm replacing the live database")
def backup_restore(backup_ref: str, target_url: str | None, yes: bool) -> None:
    """Restore BACKUP (an id, or a file name from `backup list --stored`) into --target-url, or with --yes
    over the live database; users erased after the backup was taken are erased again."""
    from shared.backups import BackupError, Refused, check_target, from_manifest, restore_backup
    from shared.db import get_engine, reset_engine
    from shared.models import Backup
    from shared.settings import _postgres_driver

    settings = get_settings()
    if target_url is None and not yes:
        raise click.ClickException("restoring over the live database: stop web, worker and beat, then pass --yes "
                                   "(or restore elsewhere with --target-url)")
    url = _postgres_driver(target_url) if target_url else settings.database_url
    try:
        try:
            backup_id = uuid.UUID(backup_ref)
        except ValueError:  # a file name: its record is read from beside it (the database may be lost)
            target = from_manifest(settings=settings, filename=backup_ref)
        else:
            with session_scope() as session:
                target = session.get(Backup, backup_id)
                if target is None:
                    raise click.ClickException("no such backup (give its file name to restore from the storage "
                                               "alone: `assistant backup list --stored`)")
                session.expunge(target)
        check_target(fmt=target.format, target_url=url)
        if target_url is None:
            reset_engine()  # no pooled connection of ours may hold the database being replaced
        done = restore_backup(settings=settings, backup=target, target_url=url, live=get_engine(),
                              replacing_live=target_url is None)
    except Refused as exc:
        raise _Refused(str(exc))
    except BackupError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"restored {done.filename} into {done.target}; erased again {len(done.reapplied)} user(s) erased "
               f"after the backup (from {' and '.join(done.erasure_sources)})")


@backup.command("reapply-erasures")
@click.option("--target-url", help="database to erase in (default: DATABASE_URL, the live one)")
def backup_reapply_erasures(target_url: str | None) -> None:
    """Erase again the users the erasure journal names (after a point-in-time or manual restore)."""
    from shared.backups import BackupError, reapply_erasures
    from shared.db import get_engine
    from shared.settings import _postgres_driver

    settings = get_settings()
    url = _postgres_driver(target_url) if target_url else settings.database_url
    try:
        reapplied = reapply_erasures(settings=settings, target_url=url, live=get_engine(),
                                     replacing_live=target_url is None)
    except BackupError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"erased again {len(reapplied)} user(s) in {safe_url(url)}")


class _Refused(click.ClickException):
    """A restore refused before anything was written: exit 2, as for a usage error."""

    exit_code = 2
