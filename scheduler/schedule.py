"""The beat schedule, and the scheduler that keeps its file."""
from __future__ import annotations

from pathlib import Path

from celery import beat
from celery.schedules import crontab

from shared.google_oauth import configured as google_configured
from shared.settings import Settings, get_settings

# Consents exchanged but never completed by their app expire after 10 minutes: a pass every
# 5 drops each within 15, without a sweep on Flower's task list every 30 seconds.
EXPIRED_LINKS_SECONDS = 300


def expired_links_seconds(settings: Settings) -> int:
    """A tenth as often as the sweeper, at most every 5 minutes (tests shorten the sweeper)."""
    return min(EXPIRED_LINKS_SECONDS, settings.sweep_interval_seconds * 10)


def beat_schedule(settings: Settings | None = None) -> dict:
    """Periodic tasks by name, only for configured features (ops/README.md lists each and its
    interval); each is safe to run twice at once (see the task)."""
    settings = settings or get_settings()
    schedule = {
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
    }
    if google_configured(settings):
        fan_out, expired_links = google_fan_out_seconds(settings), expired_links_seconds(settings)
        schedule |= {
            # Consents exchanged but never completed by their app: revoked at Google, then dropped.
            "google-expired-links": {
                "task": "scheduler.google_expired_links",
                "schedule": float(expired_links),
                "options": {"queue": "sync", "expires": expired_links},
            },
            "google-sync-fan-out": {
                "task": "scheduler.google_sync",
                "schedule": float(fan_out),
                "options": {"queue": "sync", "expires": fan_out},
            },
        }
    return schedule


def google_fan_out_seconds(settings: Settings) -> int:
    """A fifth of GOOGLE_SYNC_INTERVAL_MINUTES (3 minutes for 15), at least a minute: an account
    is synced at most a fifth late, and each job is spread over a tenth anyway (scheduler.google_sync)."""
    return max(60, settings.google_sync_interval_minutes * 60 // 5)


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
