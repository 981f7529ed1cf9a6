"""One database session per request, closed at teardown."""
from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from shared import replicas  # registers the after-commit rw:{user} marks in this process
from shared.db import new_session


def get_db() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        g.db = new_session()
    return g.db


def get_read_db(user_id=None) -> Session:
    """The request's session for reads that tolerate a little lag: a healthy replica's, else the
    primary's (get_db), as when `user_id` wrote within REPLICA_READ_AFTER_WRITE_SECONDS; never for writes."""
    if "read_db" not in g:
        g.read_db = replicas.replica_session(user_id=user_id)
    return g.read_db or get_db()


def init_app(app: Flask) -> None:
    @app.teardown_appcontext
    def _close(_exc):
        for name in ("db", "read_db"):
            session = g.pop(name, None)
            if session is not None:
                session.rollback()  # anything a view did not commit is discarded
                session.close()
