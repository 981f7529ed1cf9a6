"""The user's to-dos (the `Task` model), as the api and the workers show them."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from shared.models import Task

PRIORITIES = ("low", "normal", "high", "urgent")


def task_to_dict(task: Task) -> dict:
    """The task in the shape apps rely on; `due_at` carries the task's own offset."""
    due_at = task.due_at.astimezone(ZoneInfo(task.timezone)).isoformat() if task.due_at else None
    return {
        "id": str(task.id),
        "title": task.title,
        "notes": task.notes,
        "due_at": due_at,
        "remind_at": task.remind_at.astimezone(ZoneInfo(task.timezone)).isoformat() if task.remind_at else None,
        "reminded_at": task.reminded_at.isoformat() if task.reminded_at else None,
        "all_day": task.all_day,
        "priority": task.priority,
        "tags": list(task.tags or []),
        "done": task.done,
        "completed_at": task.completed_at.isoformat() if task.completed_at else None,
        "created_at": task.created_at.isoformat(),
        "updated_at": task.updated_at.isoformat(),
    }


def complete_task(*, session: Session, task: Task, now: datetime) -> bool:
    """Mark `task` done; False if it was done already. Not yet committed.

    The one completion of a task for agents and approved `tasks.complete` actions, so a
    repeating task's "complete this occurrence" (the repeat issue) is changed in one place.
    """
    if task.done:
        return False
    task.done = True
    task.completed_at = now
    session.flush()
    return True
