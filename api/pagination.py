"""Cursor pagination: `{"items": [...], "next_cursor": "<opaque>" | null}`, newest first."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone

from sqlalchemy import and_, or_
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.inputs import loads_checked

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Ours are about 90 characters; a longer one is not ours, and is not worth decoding.
MAX_CURSOR_LENGTH = 200


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position in `cursor`; anything but a cursor this API made is a 422, never a 500."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = loads_checked(raw)
        if not (isinstance(created_at, str) and isinstance(row_id, str)):
            raise TypeError("not two strings")
        position = datetime.fromisoformat(created_at)
        if position.tzinfo is None:
            raise ValueError("naive timestamp")
        # Out-of-range instants would only fail later, when bound as a UTC timestamp.
        return position.astimezone(timezone.utc), uuid.UUID(row_id)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise ApiError(422, "validation_error", "The cursor is not one this API gave out.",
                       errors={"cursor": ["Invalid cursor."]}) from None


def page(session: Session, query, model, *, cursor: str | None, limit: int, to_dict) -> dict:
    """One page of `query` ordered by (created_at, id) descending, a stable order for cursors."""
    return keyset_page(session, query, model.created_at, model.id, cursor=cursor, limit=limit, to_dict=to_dict)


def keyset_page(session: Session, query, column, id_column, *, cursor: str | None, limit: int, to_dict,
                descending: bool = True) -> dict:
    """One page of `query` ordered by (`column`, id), a datetime column other than created_at."""
    if cursor:
        position, row_id = decode_cursor(cursor)
        if descending:
            query = query.where(or_(column < position, and_(column == position, id_column < row_id)))
        else:
            query = query.where(or_(column > position, and_(column == position, id_column > row_id)))
    order = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    rows = session.scalars(query.order_by(*order).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return {
        "items": [to_dict(row) for row in rows],
        "next_cursor": encode_cursor(getattr(last, column.key), last.id) if more else None,
    }
