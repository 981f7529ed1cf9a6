"""Rows for tests, written straight to the database."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from shared import db
from shared.models import Job, Task, User, utcnow


def make_job(
    user: User,
    *,
    type: str = "tasks.quick_add",
    params: dict | None = None,
    status: str = "queued",
    attempts: int = 0,
    max_attempts: int = 3,
    created_at: datetime | None = None,
    enqueued_at: datetime | None = None,
    started_at: datetime | None = None,
    queue: str | None = None,
) -> Job:
    """A job row as if submitted (its message is not sent: see shared.jobs.send_job)."""
    from shared.jobtypes import REGISTRY

    job = Job(
        id=uuid.uuid4(),
        user_id=user.id,
        type=type,
        queue=queue or REGISTRY[type].queue,
        status=status,
        params=params if params is not None else {"text": "water the plants"},
        attempts=attempts,
        max_attempts=max_attempts,
        run_token=str(uuid.uuid4()),
        created_at=created_at or utcnow(),
        enqueued_at=enqueued_at,
        started_at=started_at,
    )
    with db.session_scope() as session:
        session.add(job)
    return job


def load_job(job_id) -> Job:
    with db.session_scope() as session:
        return session.get(Job, job_id)


def make_task(user: User, **fields) -> Task:
    """Insert one of `user`'s tasks; `fields` override the defaults (created_at included)."""
    fields.setdefault("title", "a task")
    with db.session_scope() as session:
        task = Task(user_id=user.id, **fields)
        session.add(task)
    return task


def at(text: str) -> datetime:
    """An aware datetime from ISO text (no offset in `text` means UTC)."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
