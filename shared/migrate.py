"""Schema migrations through Alembic, the only way the schema is made."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(revision: str = "head") -> None:
    command.upgrade(alembic_config(), revision)


def downgrade(revision: str) -> None:
    command.downgrade(alembic_config(), revision)


def current() -> None:
    command.current(alembic_config(), verbose=True)


def revision(message: str) -> None:
    """Write a new migration from the difference between the models and the database."""
    command.revision(alembic_config(), message=message, autogenerate=True)
