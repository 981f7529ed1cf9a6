"""The audit log of data access: who read or changed whose data, when, from where.

`record()` is the one way a record is written (admin endpoints, the operators' CLI, exports,
erasures, sign-ins, Google links, approvals). Records are tamper-evident, not tamper-proof:

- each row's `row_hash` is an HMAC-SHA256 under AUDIT_CHAIN_KEY over the previous row's hash
  and this row's content, so an edited, removed or inserted row breaks the chain from there on
  (`assistant audit verify`); without the key nobody can forge a consistent chain again;
- inserts are serialised (pg_advisory_xact_lock on PostgreSQL; SQLite's single writer lock),
  and `seq` is contiguous, so two writers never fork the chain;
- a trigger (migration 0015) refuses UPDATE and DELETE, except an erasure clearing the clear
  ids and the retention trim deleting rows a checkpoint row already covers.

People appear in the hashed content only as keyed hashes (shared.privacy.subject_hash under
the erasure journal's key); their clear ids sit in unhashed columns an erasure nulls, so
forgetting a person leaves the chain intact.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from shared.models import SYSTEM_ROLE, AuditRecord, User, utcnow
from shared.privacy import subject_hash
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

GENESIS = "0" * 64  # the "previous hash" of the very first record
CHECKPOINT = "audit.checkpoint"
# pg_advisory_xact_lock key: any constant no other lock of ours uses ("audit" in ASCII).
LOCK_KEY = 0x6175646974

# Who acted, as a person reading their access log is told it (never a staff email or an IP).
ACTOR_KINDS = {"self": "you", "admin": "an administrator", "operator": "an operator", "system": "the system",
               "user": "another user", "anonymous": "someone"}
OPERATOR = "operator"  # the `assistant` CLI: whoever holds the server's configuration
SYSTEM = "system"  # beat and the platform's own jobs
ANONYMOUS = "anonymous"  # not signed in: a failed sign-in


@dataclass(frozen=True)
class Origin:
    """Where a request came from: its request id and client address (None outside a request)."""

    request_id: str | None = None
    ip: str | None = None


class ChainBroken(Exception):
    """The audit log's hash chain does not hold; the message names the first row that fails."""


@dataclass
class Verified:
    rows: int
    head_seq: int | None
    head_hash: str


def _hash_of(settings: Settings, user_id) -> str | None:
    # The erasure journal's keyed hash: an erased person's records still match the journal.
    return subject_hash(settings.erasure_journal_keys[0], user_id) if user_id is not None else None


def _actor(actor, subject) -> tuple[str, uuid.UUID | None]:
    if isinstance(actor, User):
        if subject is not None and actor.id == subject:
            return "self", actor.id
        if actor.role == SYSTEM_ROLE:
            return "system", actor.id
        return ("admin" if actor.role == "admin" else "user"), actor.id
    if actor in (OPERATOR, SYSTEM, ANONYMOUS):
        return actor, None
    raise ValueError(f"unknown audit actor {actor!r}")


def content(row: dict) -> bytes:
    """The hashed part of a record, canonically (JSON, sorted keys); the clear ids are not in it."""
    created = row["created_at"].astimezone(timezone.utc).isoformat(timespec="microseconds")
    return json.dumps([row["seq"], created, row["actor_kind"], row["actor_hash"], row["action"],
                       row["resource_type"], row["resource_id"], row["subject_hash"], row["request_id"],
                       row["ip"], row["details"] or {}, row["checkpoint_seq"]],
                      sort_keys=True, separators=(",", ":"), default=str).encode()


def chain_hash(key: str, previous: str, row: dict) -> str:
    return hmac.new(key.encode(), previous.encode() + b"\n" + content(row), hashlib.sha256).hexdigest()


def _lock_head(session: Session) -> tuple[int, str]:
    """Serialise audit writers until this transaction ends; returns the chain's head (seq, hash)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    else:
        # Take SQLite's write lock now (a write of no rows), not at the insert: the head read
        # below must be the one the insert follows.
        session.execute(text("UPDATE audit_log SET seq = seq WHERE 0"))
    head = session.execute(select(AuditRecord.seq, AuditRecord.row_hash)
                           .order_by(AuditRecord.seq.desc()).limit(1)).first()
    return (head.seq, head.row_hash) if head else (0, GENESIS)


def _append(session: Session, settings: Settings, rows: list[dict]) -> list[dict]:
    seq, previous = _lock_head(session)
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["row_hash"] = previous = chain_hash(settings.audit_chain_key, previous, row)
    session.execute(insert(AuditRecord), rows)  # one INSERT for every subject of one access
    return rows


def record(session: Session, *, actor, action: str, resource: str | tuple[str, object],
           subjects: Iterable = (), request: Origin | None = None, details: dict | None = None,
           settings: Settings | None = None) -> int:
    """Write one audit record per distinct subject (none: one record without a subject); the caller commits.

    `actor` is a User, OPERATOR or SYSTEM; `resource` a type ("jobs") or (type, id); `subjects`
    the ids of the people whose data was read or changed; returns how many records were written.
    """
    settings = settings or get_settings()
    resource_type, resource_id = (resource, None) if isinstance(resource, str) else resource
    distinct = list(dict.fromkeys(uuid.UUID(str(s)) for s in subjects if s is not None)) or [None]
    request = request or Origin()
    now = utcnow()
    rows = []
    for subject in distinct:
        kind, actor_id = _actor(actor, subject)
        rows.append({"created_at": now, "actor_kind": kind, "actor_hash": _hash_of(settings, actor_id),
                     "action": action, "resource_type": resource_type,
                     "resource_id": str(resource_id) if resource_id is not None else None,
                     "subject_hash": _hash_of(settings, subject), "request_id": request.request_id,
                     "ip": request.ip, "details": details or {}, "checkpoint_seq": None,
                     "actor_id": actor_id, "subject_id": subject})
    return len(_append(session, settings, rows))


def forget(session: Session, user_id) -> None:
    """Clear an erased person's clear ids (their keyed hashes stay, and so does the chain); the caller commits."""
    session.execute(update(AuditRecord).where(AuditRecord.subject_id == user_id).values(subject_id=None))
    session.execute(update(AuditRecord).where(AuditRecord.actor_id == user_id).values(actor_id=None))


# -- verification, retention, the daily head --------------------------------------------------


_COLUMNS = [c for c in AuditRecord.__table__.columns]


def verify(session: Session, *, settings: Settings | None = None, batch: int = 1000) -> Verified:
    """Recompute the chain from the oldest row kept; raises ChainBroken at the first row that fails."""
    settings = settings or get_settings()
    key = settings.audit_chain_key
    first = session.scalar(select(func.min(AuditRecord.seq)))
    if first is None:
        return Verified(rows=0, head_seq=None, head_hash=GENESIS)
    if first == 1:
        previous = GENESIS
    else:  # the rows before were trimmed: a checkpoint row kept the last one's hash
        checkpoint = session.scalars(select(AuditRecord).where(AuditRecord.checkpoint_seq == first - 1)
                                     .order_by(AuditRecord.seq.desc()).limit(1)).first()
        if checkpoint is None:
            raise ChainBroken(f"row {first} is the oldest kept, and no checkpoint records rows 1-{first - 1} "
                              "being trimmed: older rows were deleted")
        previous = (checkpoint.details or {}).get("last_hash", "")
    expected_seq, rows = first, 0
    result = session.execute(select(*_COLUMNS).order_by(AuditRecord.seq).execution_options(yield_per=batch))
    for row in result.mappings():
        if row["seq"] != expected_seq:
            raise ChainBroken(f"rows {expected_seq}-{row['seq'] - 1} are missing")
        if chain_hash(key, previous, dict(row)) != row["row_hash"]:
            raise ChainBroken(f"row {row['seq']} ({row['action']}, {row['created_at']:%Y-%m-%d %H:%M:%S}) does "
                              "not match its hash: it, or the row before it, was changed")
        previous, expected_seq, rows = row["row_hash"], expected_seq + 1, rows + 1
    return Verified(rows=rows, head_seq=expected_seq - 1, head_hash=previous)


def trim(session: Session, *, settings: Settings | None = None, now: datetime | None = None) -> int:
    """Delete records older than AUDIT_RETENTION_DAYS behind a checkpoint row; returns how many; the caller commits."""
    settings = settings or get_settings()
    cutoff = (now or utcnow()) - timedelta(days=settings.audit_retention_days)
    last = session.scalar(select(func.max(AuditRecord.seq)).where(AuditRecord.created_at < cutoff))
    if last is None:
        return 0
    last_hash = session.scalar(select(AuditRecord.row_hash).where(AuditRecord.seq == last))
    # The checkpoint is chained like any row, so it cannot be forged without the key; the
    # trigger lets the DELETE through only for rows a checkpoint covers.
    _append(session, settings, [{
        "created_at": utcnow(), "actor_kind": SYSTEM, "actor_hash": None, "action": CHECKPOINT,
        "resource_type": "audit_log", "resource_id": None, "subject_hash": None, "request_id": None, "ip": None,
        "details": {"last_hash": last_hash, "retention_days": settings.audit_retention_days},
        "checkpoint_seq": last, "actor_id": None, "subject_id": None}])
    return session.execute(AuditRecord.__table__.delete().where(AuditRecord.seq <= last)).rowcount


def head(session: Session) -> tuple[int | None, str]:
    """The newest record's seq and hash (what beat logs daily, for an outside copy to compare)."""
    row = session.execute(select(AuditRecord.seq, AuditRecord.row_hash).order_by(AuditRecord.seq.desc())
                          .limit(1)).first()
    return (row.seq, row.row_hash) if row else (None, GENESIS)


def to_dict(row: AuditRecord) -> dict:
    """A record as admins read it (GET /v1/admin/audit)."""
    return {"seq": row.seq, "at": row.created_at.isoformat(), "actor_kind": row.actor_kind,
            "actor_id": str(row.actor_id) if row.actor_id else None, "action": row.action,
            "resource_type": row.resource_type, "resource_id": row.resource_id,
            "subject_id": str(row.subject_id) if row.subject_id else None, "request_id": row.request_id,
            "ip": row.ip, "details": row.details or {}}


def to_access_log(row: AuditRecord) -> dict:
    """A record as its subject reads it: the actor as a kind, no staff identity, no address."""
    return {"at": row.created_at.isoformat(), "action": row.action, "resource_type": row.resource_type,
            "resource_id": row.resource_id, "actor": ACTOR_KINDS.get(row.actor_kind, "someone")}
