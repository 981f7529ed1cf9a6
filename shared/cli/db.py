"""Schema migrations: `assistant db upgrade|downgrade|current|revision`."""
from __future__ import annotations

import click

from shared import migrate
from shared.cli.errors import shown_url as safe_url
from shared.settings import get_settings


@click.group()
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
    click.echo(f"database at {safe_url(settings.database_url)} is at {revision}")


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
