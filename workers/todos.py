"""The user's to-dos: the `tasks.quick_add` job, and task changes an agent proposed and the user approved."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import memories
from shared.errors import JobError
from shared.models import Task, User, utcnow
from shared.repeat import RepeatError
from shared.settings import get_settings
from shared.todos import complete_task, set_repeat, task_to_dict
from workers.job_runner import JobContext, JobFailed, job_task
from workers.quickadd import parse_quick_add


def create_task_from_text(*, session: Session, user: User, text: str, job_id: uuid.UUID, now: datetime) -> Task:
    """Parse `text` in the user's timezone and locale and add the task (once per job)."""
    existing = session.scalar(select(Task).where(Task.source_job_id == job_id, Task.user_id == user.id))
    if existing is not None:
        return existing
    try:
        parsed = parse_quick_add(text, now=now, timezone=user.timezone, locale=user.locale)
    except ValueError as exc:
        raise JobFailed("unparseable_text", str(exc)) from exc
    task = Task(
        user_id=user.id,
        title=parsed.title,
        due_at=parsed.due_at,
        # A time of day named in the text is when to remind; a bare date ("friday") is not.
        remind_at=parsed.due_at if parsed.due_at is not None and not parsed.all_day else None,
        all_day=parsed.all_day,
        timezone=user.timezone,
        priority=parsed.priority,
        tags=parsed.tags,
        source_job_id=job_id,
    )
    if parsed.repeat:
        try:
            # The same checks as PATCH; the parser has vetted its own rules, this guards the
            # task against any it let through: the task is still made, without the rule.
            set_repeat(task=task, rule=parsed.repeat, now=now)
        except RepeatError:
            pass
    session.add(task)
    session.flush()
    return task


@job_task("tasks.quick_add")
def quick_add(ctx: JobContext) -> dict:
    """Turn the text into a task; the task commits together with the job's success."""
    task = create_task_from_text(
        session=ctx.session, user=ctx.user, text=ctx.params["text"], job_id=ctx.job.id, now=utcnow()
    )
    return {"task": task_to_dict(task)}


# -- approved agent proposals (api/resources/actions.py submits them; each runs once) ----------


def _fields(params: dict) -> dict:
    fields = {key: params[key] for key in ("title", "notes", "priority") if key in params}
    if "tags" in params:
        fields["tags"] = list(dict.fromkeys(tag.lower() for tag in params["tags"]))
    if "due_at" in params:
        fields["due_at"] = datetime.fromisoformat(params["due_at"]) if params["due_at"] else None
    return fields


def _own_task(ctx: JobContext) -> Task:
    task = ctx.session.scalar(select(Task).where(Task.id == uuid.UUID(ctx.params["task_id"]),
                                                 Task.user_id == ctx.user.id))
    if task is None:
        raise JobFailed("task_not_found", "The task is gone.")
    return task


@job_task("tasks.create")
def create_approved(ctx: JobContext) -> dict:
    """Create the task an agent proposed (once: a re-run finds the task of this job)."""
    existing = ctx.session.scalar(select(Task).where(Task.source_job_id == ctx.job.id, Task.user_id == ctx.user.id))
    task = existing or Task(user_id=ctx.user.id, timezone=ctx.user.timezone, source_job_id=ctx.job.id,
                            **_fields(ctx.params))
    ctx.session.add(task)
    ctx.session.flush()
    return {"task": task_to_dict(task)}


@job_task("tasks.update")
def update_approved(ctx: JobContext) -> dict:
    """Apply the change an agent proposed to a task (setting the same fields twice is harmless)."""
    task = _own_task(ctx)
    for name, value in _fields(ctx.params).items():
        setattr(task, name, value)
    ctx.session.flush()
    return {"task": task_to_dict(task)}


@job_task("tasks.complete")
def complete_approved(ctx: JobContext) -> dict:
    """Complete the task an agent proposed to complete, through the one completion service."""
    task = _own_task(ctx)
    complete_task(session=ctx.session, task=task, now=utcnow())
    return {"task": task_to_dict(task)}


@job_task("memories.create")
def remember_approved(ctx: JobContext) -> dict:
    """Keep the memory an agent proposed; its source is the proposing job."""
    source = ctx.params.get("source") or {"kind": "job", "id": str(ctx.job.id)}
    try:
        memory = memories.create_memory(session=ctx.session, user=ctx.user, text=ctx.params["text"],
                                        source=source, limit=get_settings().max_memories_per_user)
    except JobError as exc:
        raise JobFailed(exc.code, exc.message) from exc
    return {"memory": memories.memory_to_dict(memory)}
