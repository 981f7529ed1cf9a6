"""The beat schedule."""
from __future__ import annotations

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
        "google-sync-fan-out": {
            "task": "scheduler.google_sync",
            "schedule": 60.0,
            "options": {"queue": "sync", "expires": 60},
        },
    }
