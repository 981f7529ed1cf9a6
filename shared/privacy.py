"""What we hold about a user, found by introspecting the models: every table with a foreign
key to users is theirs to export and ours to erase, including tables added later."""
from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator

from sqlalchemy import Column, Table, func, or_, select
from sqlalchemy.orm import Session

from shared.models import Base, User

# Columns named here are listed in an export as withheld, never dumped: credentials and
# their hashes, encrypted tokens and bodies, internal run tokens.
WITHHELD = re.compile(r"password|secret|token|_hash$|_encrypted$", re.IGNORECASE)


def user_tables() -> list[tuple[Table, list[Column]]]:
    """Each table that refers to users, with the columns that do (users itself by its id)."""
    found = [(User.__table__, [User.__table__.c.id])]
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if any(fk.column.table is User.__table__ for fk in c.foreign_keys)]
        if columns and table is not User.__table__:
            found.append((table, columns))
    return found


def withheld_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if WITHHELD.search(c.name)]


def owned_rows(table: Table, columns: list[Column], user_id):
    """A SELECT of the table's rows that belong to the user (withheld columns left out)."""
    shown = [c for c in table.columns if c.name not in withheld_columns(table)]
    order = list(table.primary_key.columns) or shown[:1]
    return select(*shown).where(or_(*(c == user_id for c in columns))).order_by(*order)


def row_counts(session: Session, user_id) -> dict[str, int]:
    """How many rows of each user table belong to the user."""
    return {
        table.name: session.scalar(select(func.count()).select_from(table).where(or_(*(c == user_id for c in columns))))
        for table, columns in user_tables()
    }


def iter_rows(session: Session, table: Table, columns: list[Column], user_id, batch: int = 500) -> Iterator[dict]:
    result = session.execute(owned_rows(table, columns, user_id).execution_options(yield_per=batch))
    for row in result.mappings():
        yield dict(row)


def subject_hash(secret_key: str, user_id) -> str:
    """A keyed hash of a user id: an audit record can be matched to a known id, not read."""
    return hmac.new(secret_key.encode(), str(user_id).encode(), hashlib.sha256).hexdigest()
