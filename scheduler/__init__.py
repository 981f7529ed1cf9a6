"""Every periodic definition, in one place. `celery -A scheduler beat` runs them."""
from scheduler import audit, google_sync, status, sweep, tick  # noqa: F401  (registers the periodic tasks in workers)
from scheduler.schedule import beat_schedule
from shared.celery_app import app

app.conf.beat_schedule = beat_schedule()
app.conf.beat_scheduler = "scheduler.schedule:PersistentScheduler"

__all__ = ["app"]
