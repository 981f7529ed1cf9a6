"""Beat queues only what configured features need, and ops/README.md names each entry and its interval."""
from __future__ import annotations

import re

import pytest

from scheduler.schedule import beat_schedule
from tests.support import ROOT

pytestmark = pytest.mark.fast

GOOGLE = {"google_client_id": "id.apps.googleusercontent.com", "google_client_secret": "secret",
          "google_redirect_uri": "https://api.example/v1/integrations/google/callback",
          "encryption_keys": ("uHnrE0uOAuHJTBbFK0PGmHZ2TD8RFxUoUjEf3KQKb_A=",)}


def test_no_google_housekeeping_without_google(settings):
    without = settings.replace(google_client_id="", google_client_secret="", google_redirect_uri="")
    assert not [name for name in beat_schedule(without) if name.startswith("google")]


def test_google_housekeeping_runs_no_more_often_than_its_work_needs(settings):
    schedule = beat_schedule(settings.replace(**GOOGLE, google_sync_interval_minutes=15, sweep_interval_seconds=30))
    assert schedule["google-sync-fan-out"]["schedule"] == 180.0  # a fifth of the 15-minute sync interval
    assert schedule["google-expired-links"]["schedule"] == 300.0  # links expire after 10 minutes
    assert beat_schedule(settings.replace(**GOOGLE, google_sync_interval_minutes=1))[
        "google-sync-fan-out"]["schedule"] == 60.0


def test_ops_readme_names_each_periodic_task(settings):
    text = (ROOT / "ops" / "README.md").read_text()
    table = text[text.index("## Periodic tasks (beat)"):]
    table = table[:table.index("\n## ")]
    for name, entry in beat_schedule(settings.replace(**GOOGLE)).items():
        row = re.search(rf"^\| `{name}` \| `{re.escape(entry['task'])}`.*$", table, re.M)
        assert row, f"ops/README.md's periodic tasks do not name {name} ({entry['task']})"
