"""The schedule and reminder tick fires at each minute boundary, not 60 s after beat started."""
from __future__ import annotations

from datetime import datetime, timezone

from celery.schedules import crontab

from scheduler.schedule import beat_schedule, tick_schedule


def test_the_production_tick_is_a_crontab_at_every_minute_boundary(settings):
    assert settings.schedule_tick_seconds == 60
    schedule = beat_schedule()["schedules-tick"]["schedule"]
    assert schedule == crontab(minute="*")
    # Last run at 16:59:00: not due at 16:59:59, due at 17:00:00, whenever beat started.
    last = datetime(2026, 11, 27, 16, 59, 0, tzinfo=timezone.utc)
    schedule.nowfun = lambda: datetime(2026, 11, 27, 16, 59, 59, tzinfo=timezone.utc)
    assert not schedule.is_due(last).is_due
    schedule.nowfun = lambda: datetime(2026, 11, 27, 17, 0, 0, tzinfo=timezone.utc)
    assert schedule.is_due(last).is_due


def test_shorter_ticks_stay_intervals_for_tests_and_whole_minutes_stay_on_boundaries():
    assert tick_schedule(5) == 5.0
    assert tick_schedule(90) == 90.0
    assert tick_schedule(300) == crontab(minute="*/5")
