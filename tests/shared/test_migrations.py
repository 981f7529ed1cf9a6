"""The migrations make exactly the schema the models describe."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from shared import db
from shared.models import Base


def test_models_and_migrations_agree():
    # The session fixture built the schema with `upgrade head`; nothing may be left over.
    with db.get_engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == [], "write a migration: assistant db revision -m '...'"


def test_migrations_go_down_and_up_again():
    from shared import migrate

    migrate.downgrade("base")
    migrate.upgrade()
    with db.get_engine().connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() is not None
