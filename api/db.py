"""One database session per request, closed at teardown."""
from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from shared.db import new_session


def get_db() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        g.db = new_session()
    return g.db


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def _close(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.rollback()  # anything a view did not commit is discarded
            session.close()
