"""Alembic environment: the database comes from our settings, not from alembic.ini."""
from alembic import context

from shared.db import get_engine
from shared.models import Base

config = context.config


def run_migrations() -> None:
    connectable = config.attributes.get("connection") or get_engine()
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters by copy
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
