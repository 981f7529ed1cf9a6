"""Sends that follow a commit by themselves: a session-level outbox.

What a transaction means to tell the world (a job's message to the broker, a push kick, a
long-poll's wake-up, the job-status cache's new entry) registers here with the session
instead of being sent by hand after `commit()`. The hooks below send it once the commit is
done, and drop it on a rollback, a savepoint's included (what registered inside a
`begin_nested()` that rolled back never leaves). The sends run after the database commit
and never write through the session: a send that needs to write (the broker-failure
bookkeeping of shared.jobs.send) opens its own short transaction.

An entry has up to three steps, each optional:
    before_commit(session)  inside the transaction, SQL allowed (the status cache reads its rows)
    after_commit()          the send itself; it must not raise (it logs)
    after_rollback()        undo what was done at registration (the status cache's pending mark)
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

_KEY = "jobs.outbox"


class Entry:
    """One thing to do when the transaction ends; override what applies."""

    def before_commit(self, session: Session) -> None:
        pass

    def after_commit(self) -> None:
        pass

    def after_rollback(self) -> None:
        pass


class _Send(Entry):
    def __init__(self, send: Callable[[], object]):
        self.send = send

    def after_commit(self) -> None:
        self.send()


def register(session: Session, entry: Entry) -> None:
    """Hold `entry` until the transaction it belongs to (the innermost savepoint) ends."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        # Nothing uncommitted to follow: whatever this sends about is in the database already.
        entry.before_commit(session)
        _fire([entry])
        return
    _boxes(session).setdefault(transaction, []).append(entry)


def after_commit(session: Session, send: Callable[[], object]) -> None:
    """Call `send()` once the session's transaction has committed (never if it rolls back)."""
    register(session, _Send(send))


def pending(session: Session) -> list[Entry]:
    """What waits on the session's commit (for tests)."""
    return [entry for entries in _boxes(session).values() for entry in entries]


def _boxes(session: Session) -> dict[SessionTransaction, list[Entry]]:
    return session.info.setdefault(_KEY, {})


def _current(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint's release: its entries move to the enclosing transaction
    for entry in _boxes(session).get(session.get_transaction(), []):
        entry.before_commit(session)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return
    entries = _boxes(session).pop(session.get_transaction(), [])
    _fire(entries)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    # Fired for the transaction or savepoint being rolled back, before it closes: drop its own
    # entries (a savepoint's children closed first and handed theirs to it).
    _drop(_boxes(session).pop(_current(session), []))


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    entries = _boxes(session).pop(transaction, None)
    if not entries:
        return
    if transaction.nested and transaction.parent is not None:
        # A released savepoint (or one closed by its parent's rollback, which then drops these):
        # its entries now belong to the enclosing transaction.
        _boxes(session).setdefault(transaction.parent, []).extend(entries)
    else:
        _drop(entries)  # closed without a commit (session.close() on an open transaction)


def _fire(entries: list[Entry]) -> None:
    for entry in entries:
        try:
            entry.after_commit()
        except Exception:  # the commit is done: a failed send must not turn it into an error
            log.exception("a send after commit failed")


def _drop(entries: list[Entry]) -> None:
    for entry in entries:
        try:
            entry.after_rollback()
        except Exception:
            log.exception("undoing a dropped send failed")
