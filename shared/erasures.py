"""Erasures that survive a restore.

A backup taken before a user was erased still holds them; restoring it would bring the
person back, with a refresh token that works. So every erasure is remembered in two places
the restored database cannot overwrite, and applied again after any restore:

- the live database's `audit_events` (`account.deleted`), read before it is replaced;
- the erasure journal, one small object per erasure beside the backups (BACKUP_DIR's
  `erasure-journal/`, or `<prefix>/erasure-journal/` in the bucket with OBJECT_STORAGE_URL),
  for when no live database survives (a lost server, a point-in-time recovery).

Neither holds the user's id: only `erasure_id`, an HMAC-SHA256 of it under
ERASURE_JOURNAL_KEY, a key of its own because operators rotate SECRET_KEY. Re-applying
hashes every user id in the restored database and erases the ones that match. Several
keys may be given, newest first: entries written under an older key still match.
"""
from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from shared.models import AuditEvent, User, utcnow
from shared.privacy import subject_hash
from shared.settings import Settings
from shared.storage import LocalStorage, S3Storage, Storage

log = logging.getLogger(__name__)

JOURNAL = "erasure-journal"
ERASED = "account.deleted"
_ID_LENGTH = 64  # hex of an HMAC-SHA256


def erasure_id(key: str, user_id) -> str:
    """The keyed id an erasure is remembered by: matches a known user id, reveals nothing."""
    return subject_hash(key, user_id)  # the audit record's keyed hash, under the journal's own key


def journal_storage(settings: Settings) -> Storage:
    """Where the journal lives: beside the backups, so it outlives the database as they do."""
    if settings.object_storage_url:
        return S3Storage(settings, JOURNAL)
    return LocalStorage(settings.backup_dir / JOURNAL)


class JournalUnavailable(Exception):
    """The journal could not be written (disk, bucket); the erasure must wait for it."""


def record(*, settings: Settings, user_id, erased_at: datetime | None = None) -> str:
    """Write the user's erasure into the journal (idempotent: one object per erasure id)."""
    from botocore.exceptions import BotoCoreError, ClientError

    key_id = erasure_id(settings.erasure_journal_keys[0], user_id)
    entry = {"erasure_id": key_id, "erased_at": (erased_at or utcnow()).isoformat()}
    storage = journal_storage(settings)
    try:
        storage.put(f"{key_id}.json", data=json.dumps(entry).encode(), content_type="application/json")
    except (OSError, BotoCoreError, ClientError) as exc:
        raise JournalUnavailable(f"the erasure journal at {storage.where()} cannot be written: {exc}") from None
    return key_id


def journal_ids(*, settings: Settings) -> set[str]:
    """Every erasure id in the journal (its object names; an entry is never read for more)."""
    found = set()
    for key in journal_storage(settings).keys(""):
        name = key.rsplit("/", 1)[-1].removesuffix(".json")
        if len(name) == _ID_LENGTH and all(c in "0123456789abcdef" for c in name):
            found.add(name)
    return found


@dataclass
class Erasures:
    """What is known to have been erased: erasure ids, and (older audit records) subject hashes."""

    ids: set[str] = field(default_factory=set)
    subject_hashes: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)

    def add(self, other: "Erasures") -> None:
        self.ids |= other.ids
        self.subject_hashes |= other.subject_hashes
        self.sources += other.sources


def from_database(connection: Connection) -> Erasures:
    """The erasures a database's audit_events record."""
    table = AuditEvent.__table__
    found = Erasures(sources=["audit_events"])
    for subject, details in connection.execute(select(table.c.subject_hash, table.c.details)
                                               .where(table.c.event == ERASED)):
        details = details if isinstance(details, dict) else json.loads(details or "{}")
        if details.get("erasure_id"):
            found.ids.add(details["erasure_id"])
        else:  # recorded before erasure ids: only the SECRET_KEY hash matches
            found.subject_hashes.add(subject)
    return found


def from_live(engine: Engine) -> Erasures | None:
    """The live database's erasures, or None when it cannot be read (gone, or never migrated)."""
    try:
        with engine.connect() as connection:
            return from_database(connection)
    except SQLAlchemyError as exc:
        log.warning("the live database's erasures could not be read; the journal alone is used: %s",
                    str(exc).splitlines()[0])
        return None


def known(*, settings: Settings, live: Engine | None) -> Erasures:
    """Every erasure the journal and the live database (when readable) remember."""
    found = Erasures(ids=journal_ids(settings=settings), sources=["journal"])
    if live is not None:
        from_db = from_live(live)
        if from_db is not None:
            found.add(from_db)
    return found


def reapply(*, connection: Connection, settings: Settings, erasures: Erasures) -> list[uuid.UUID]:
    """Erase again, in `connection`'s database, every user the erasures name; returns their ids.

    Only `users.id` and `audit_events` are touched, so it works on a backup made under an
    older schema: every table that refers to users cascades (ON DELETE CASCADE), their
    refresh tokens with them. The caller commits.
    """
    if not erasures.ids and not erasures.subject_hashes:
        return []
    users = User.__table__
    keys = settings.erasure_journal_keys
    matched = []
    for (user_id,) in connection.execute(select(users.c.id)):
        if any(erasure_id(key, user_id) in erasures.ids for key in keys) or (
                erasures.subject_hashes and subject_hash(settings.secret_key, user_id) in erasures.subject_hashes):
            matched.append(user_id)
    if not matched:
        return []
    connection.execute(delete(users).where(users.c.id.in_(matched)))
    now = utcnow()
    connection.execute(insert(AuditEvent.__table__), [
        {"id": uuid.uuid4(), "event": ERASED, "subject_hash": subject_hash(settings.secret_key, user_id),
         "details": {"erasure_id": erasure_id(keys[0], user_id), "reapplied_after_restore": True},
         "created_at": now}
        for user_id in matched
    ])
    return matched
