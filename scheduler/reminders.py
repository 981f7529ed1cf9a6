"""Task reminders: each due reminder claimed exactly once, pushed to every device of its user.

The schedule tick calls `remind` every minute (at the minute boundary). A reminder is claimed
by a compare-and-set on (reminded_at IS NULL, remind_at unchanged), in the same transaction
that records its pushes and webhook deliveries; on PostgreSQL the candidates are read FOR
UPDATE SKIP LOCKED, so two beats' ticks split them. After downtime, a reminder less than
MISSED_AFTER late is still sent, once; an older one is marked missed, not sent: a push at
11:00 saying "call mom at 5pm yesterday" helps nobody.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import is_postgres
from shared.models import Task, utcnow
from shared.notifications import Emitted, due_deliveries, due_sends, emit, kick
from shared.todos import task_to_dict

MISSED_AFTER = timedelta(hours=1)


@dataclass
class ReminderReport:
    sent: int = 0
    missed: int = 0
    lost_race: int = 0


def remind(*, session: Session, now: datetime | None = None, batch: int = 500) -> ReminderReport:
    """Claim every due reminder of an open task; push the recent ones, mark the stale ones missed."""
    now = now or utcnow()
    report = ReminderReport()
    due = (
        select(Task.id, Task.remind_at)
        .where(Task.reminded_at.is_(None), Task.remind_at.is_not(None), Task.done.is_(False), Task.remind_at <= now)
        .order_by(Task.remind_at)
        .limit(batch)
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    emitted = Emitted()
    for task_id, remind_at in session.execute(due).all():
        missed = remind_at < now - MISSED_AFTER
        claimed = session.execute(
            update(Task)
            .where(Task.id == task_id, Task.reminded_at.is_(None), Task.remind_at == remind_at, Task.done.is_(False))
            .values(reminded_at=now, reminder_status="missed" if missed else "sent")
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            report.lost_race += 1
            continue
        if missed:
            report.missed += 1
            continue
        report.sent += 1
        task = session.get(Task, task_id, populate_existing=True)
        emitted += emit(
            session=session, user_id=task.user_id,
            # The time is part of the key: a reminder moved by PATCH is a new one.
            event_key=f"task.reminder:{task.id}:{int(remind_at.timestamp())}",
            title=task.title, body=_when(task),
            data={"type": "task.reminder", "task_id": task.id},
            webhook_event="task.reminder", payload={"task": task_to_dict(task)},
        )
    kick(session, emitted)
    session.commit()
    return report


def _when(task: Task) -> str:
    if task.due_at is None:
        return "Reminder"
    local = task.due_at.astimezone(ZoneInfo(task.timezone))
    return "Due " + local.strftime("%a %d %b, %H:%M")


def retry_due(*, session: Session, now: datetime | None = None) -> Emitted:
    """Send again what is due: push retries, lost kicks, dead workers' claims, webhook attempts."""
    emitted = Emitted(send_ids=due_sends(session=session, now=now))
    emitted += due_deliveries(session=session, now=now)
    kick(session, emitted)  # they leave once this commits (shared.jobs.outbox)
    session.commit()
    return emitted
