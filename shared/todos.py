"""The user's to-dos (the `Task` model): how the api and the workers show and complete them."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared import repeat as rules
from shared.models import Task, TaskCompletion, utcnow

PRIORITIES = ("low", "normal", "high", "urgent")


def _shown(moment: datetime | None, task: Task) -> str | None:
    return moment.astimezone(ZoneInfo(task.timezone)).isoformat() if moment else None


def task_to_dict(task: Task) -> dict:
    """The task in the shape apps rely on; `due_at` carries the task's own offset."""
    return {
        "id": str(task.id),
        "title": task.title,
        "notes": task.notes,
        "due_at": _shown(task.due_at, task),
        "remind_at": _shown(task.remind_at, task),
        "reminded_at": task.reminded_at.isoformat() if task.reminded_at else None,
        "all_day": task.all_day,
        "priority": task.priority,
        "tags": list(task.tags or []),
        "repeat": task.repeat,
        "repeat_start": _shown(task.repeat_start, task),
        "done": task.done,
        "completed_at": task.completed_at.isoformat() if task.completed_at else None,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
    }


def completion_to_dict(completion: TaskCompletion, task: Task) -> dict:
    """One completed occurrence, its times in the task's zone."""
    return {
        "id": str(completion.id),
        "task_id": str(completion.task_id),
        "due_at": _shown(completion.due_at, task),
        "next_due_at": _shown(completion.next_due_at, task),
        "completed_at": completion.created_at.isoformat(),
    }


def set_repeat(*, task: Task, rule: str | None, now: datetime) -> None:
    """Give the task a repeat rule starting at its due time (or now), or take it away.

    Raises shared.repeat.RepeatError for a rule we do not take (its `code` says which).
    """
    if rule is None:
        task.repeat, task.repeat_start = None, None
        return
    start = task.due_at or now
    task.repeat = rules.check(rule, start=start, zone=ZoneInfo(task.timezone))
    task.repeat_start = start


def complete_task(*, session: Session, task: Task, now: datetime | None = None) -> TaskCompletion | None:
    """Complete the task's current occurrence: a repeating task moves on to its next one, any
    other (or a series that ended) is marked done. Records the completion; not yet committed.

    Returns None when there was nothing to complete: the task is done already, or another
    request completed this same occurrence first (each UPDATE compares the due_at it read).
    """
    now = now or utcnow()
    if task.done:
        return None
    due_at, remind_at = task.due_at, task.remind_at
    following = _next_due(task, now=now)
    if following is not None:
        values = {
            "due_at": following,
            # The reminder keeps its distance from the due time (15 minutes before, a day before).
            "remind_at": following + (remind_at - due_at) if remind_at and due_at else (following if remind_at else None),
            # Cleared in the same UPDATE that moves remind_at: the reminder tick claims a reminder
            # on (reminded_at IS NULL, remind_at unchanged), so the new one is claimable exactly once.
            "reminded_at": None,
            "reminder_status": None,
        }
        if "COUNT=" not in task.repeat:
            # Without COUNT a rule started at one of its occurrences has the same occurrences
            # after it, so the start moves on and dateutil never walks years of past ones.
            values["repeat_start"] = following
    else:
        values = {"done": True, "completed_at": now}
    moved = session.execute(
        update(Task)
        .where(Task.id == task.id, Task.done.is_(False),
               Task.due_at.is_(None) if due_at is None else Task.due_at == due_at)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(task)
    if not moved:
        return None
    completion = TaskCompletion(task_id=task.id, user_id=task.user_id, due_at=due_at, next_due_at=following,
                                created_at=now)
    session.add(completion)
    session.flush()
    return completion


def _next_due(task: Task, *, now: datetime) -> datetime | None:
    """The first occurrence strictly after max(due_at, now), so an overdue task is not left overdue."""
    if not task.repeat:
        return None
    after = max(task.due_at, now) if task.due_at else now
    start = task.repeat_start or task.due_at or now
    try:
        return rules.next_occurrence(task.repeat, start=start, zone=ZoneInfo(task.timezone), after=after)
    except rules.RepeatError:
        # A rule stored before a tightening of the checks: the series ends here, nothing is lost.
        return None
