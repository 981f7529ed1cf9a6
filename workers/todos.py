"""The user's to-dos: the `tasks.quick_add` job."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Task, User, utcnow
from shared.repeat import RepeatError
from shared.todos import set_repeat, task_to_dict
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
