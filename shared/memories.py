"""Memories: short facts the user keeps for the agents, and how agents find the relevant ones.

The text is cleaned like third-party text (invisible characters removed) when it is
written, because an approved memory may have been proposed from a run that read mail.
"""
from __future__ import annotations

import re
import uuid

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.errors import InvalidParams, MemoryLimitReached
from shared.models import Memory, User, utcnow
from shared.safety import strip_invisible

MAX_TEXT = 500
RECENT = 10  # the newest memories always go along
MATCHED = 10  # and up to this many more that share a word with the request
_WORD = re.compile(r"[^\W_]{4,}")  # words long enough to mean something ("the", "and" do not)


def memory_to_dict(memory: Memory) -> dict:
    return {"id": str(memory.id), "text": memory.text, "source": dict(memory.source or {"kind": "user"}),
            "created_at": memory.created_at.isoformat(), "updated_at": memory.updated_at.isoformat()}


def clean_text(text: str) -> str:
    """The memory's text as stored: no invisible characters, no NULs, trimmed, at most 500 characters."""
    cleaned, _ = strip_invisible(text or "")
    cleaned = cleaned.replace("\x00", "").strip()
    if not cleaned:
        raise InvalidParams("invalid_memory", "A memory needs some visible text.", errors={"text": ["empty"]})
    if len(cleaned) > MAX_TEXT:
        raise InvalidParams("invalid_memory", f"A memory is at most {MAX_TEXT} characters.",
                            errors={"text": [f"longer than {MAX_TEXT} characters"]})
    return cleaned


def create_memory(*, session: Session, user: User, text: str, source: dict, limit: int) -> Memory:
    """Add a memory (not yet committed); MemoryLimitReached at `limit` memories."""
    text = clean_text(text)
    held = session.scalar(select(func.count()).select_from(Memory).where(Memory.user_id == user.id))
    if held >= limit:
        raise MemoryLimitReached("memory_limit_reached",
                                 f"You keep {held} memories, the most allowed ({limit}); delete one first.")
    memory = Memory(id=uuid.uuid4(), user_id=user.id, text=text, source=source, created_at=utcnow())
    session.add(memory)
    session.flush()
    return memory


def relevant_memories(*, session: Session, user: User, query: str) -> list[Memory]:
    """The newest memories and those sharing a word with `query` (no vector store needed yet)."""
    recent = list(session.scalars(
        select(Memory).where(Memory.user_id == user.id)
        .order_by(Memory.created_at.desc(), Memory.id.desc()).limit(RECENT)
    ))
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query or "")))[:20]
    matched = []
    if words:
        matched = list(session.scalars(
            select(Memory).where(Memory.user_id == user.id, Memory.id.not_in([m.id for m in recent]) if recent
                                 else Memory.user_id == user.id,
                                 or_(*[Memory.text.ilike(f"%{w}%") for w in words]))
            .order_by(Memory.created_at.desc()).limit(MATCHED)
        ))
    return recent + matched
