"""The beat schedule, and the scheduler that keeps its file."""
from __future__ import annotations

from pathlib import Path

from celery import beat
from celery.schedules import crontab

from shared.settings import get_settings


def beat_schedule() -> dict:
    """Periodic tasks by name; each is safe to run twice at once (see the task)."""
    settings = get_settings()
    return {
        "sweep-lost-jobs": {
            "task": "scheduler.sweep",
            "schedule": float(settings.sweep_interval_seconds),
            "options": {"queue": "maintenance", "expires": settings.sweep_interval_seconds},
        },
        # User schedules (and each user's daily digest) and task reminders: claimed in the database,
        # see scheduler.tick and scheduler.reminders.
        "schedules-tick": {
            "task": "scheduler.tick",
            "schedule": tick_schedule(settings.schedule_tick_seconds),
            "options": {"queue": "maintenance", "expires": settings.schedule_tick_seconds},
        },
        # Platform jobs, queued as the system user once per day however many beats run
        # (an idempotency key per day); the times are UTC.
        "nightly-backup": {
            "task": "scheduler.platform_job",
            "schedule": crontab(hour=2, minute=30),
            "args": ("ops.backup",),
            "options": {"queue": "maintenance", "expires": 3600},
        },
        "daily-retention": {
            "task": "scheduler.platform_job",
            "schedule": crontab(hour=3, minute=30),
            "args": ("ops.retention",),
            "options": {"queue": "maintenance", "expires": 3600},
        },
        "daily-backup-verification": {
            "task": "scheduler.platform_job",
            "schedule": crontab(hour=4, minute=30),
            "args": ("ops.verify_backup",),
            "options": {"queue": "maintenance", "expires": 3600},
        },
        # The audit log's head hash into the logs, a copy a database superuser cannot rewrite.
        "daily-audit-head": {
            "task": "scheduler.audit_head",
            "schedule": crontab(hour=0, minute=5),
            "options": {"queue": "maintenance", "expires": 3600},
        },
        # The status page's history: each component's worst state per day (scheduler.status).
        "status-sample": {
            "task": "scheduler.status_sample",
            "schedule": 300.0,
            "options": {"queue": "maintenance", "expires": 300},
        },
        # Consents exchanged but never completed by their app: revoked at Google, then dropped.
        "google-expired-links": {
            "task": "scheduler.google_expired_links",
            "schedule": float(settings.sweep_interval_seconds),
            "options": {"queue": "sync", "expires": settings.sweep_interval_seconds},
        },
        "google-sync-fan-out": {
            "task": "scheduler.google_sync",
            "schedule": 60.0,
            "options": {"queue": "sync", "expires": 60},
        },
    }


def tick_schedule(seconds: int):
    """At each minute boundary (a run due at 17:00 starts at 17:00:00, not up to a minute
    later); an interval under a minute (tests) or not a whole number of minutes stays one."""
    if seconds < 60 or seconds % 60:
        return float(seconds)
    return crontab(minute="*" if seconds == 60 else f"*/{seconds // 60}")


class PersistentScheduler(beat.PersistentScheduler):
    """Celery's file-backed scheduler, which first makes its file's directory.

    On a fresh clone `var/` exists only once something creates it: without this, beat died
    at once on PostgreSQL + Redis (nothing else writes there) and honcho stopped the rest.
    """

    def setup_schedule(self):
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
