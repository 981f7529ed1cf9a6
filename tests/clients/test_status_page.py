"""The public status page in Chromium: no sign-in, job processing degraded while the worker is
stopped and the interactive queue's oldest job waits past its threshold, an incident from the CLI."""
from __future__ import annotations

from datetime import timedelta

import pytest
from click.testing import CliRunner
from playwright.sync_api import expect

from shared import heartbeats, status
from shared.cli import main
from shared.models import utcnow
from shared.redis_clients import cache_redis
from tests.factories import make_job
from tests.support import wait_until

pytestmark = pytest.mark.worker


def test_the_status_page_shows_a_stopped_worker_and_an_incident(browser_page, live_server, worker, user, settings):
    page = browser_page
    # The suite flushes Redis between tests: the worker's next beat (WORKER_HEARTBEAT_SECONDS) brings it back.
    wait_until(heartbeats.online, timeout=30, message="the worker's heartbeat")
    status.forget_cached(cache_redis())
    page.goto(f"{live_server.url}/status")
    expect(page.get_by_role("heading", name="Service status")).to_be_visible()
    components = page.get_by_role("list", name="Components")
    expect(components.get_by_role("listitem").filter(has_text="Job processing (interactive)")).to_contain_text(
        "operational")

    with worker.paused():
        waited = utcnow() - timedelta(seconds=settings.status_queue_wait_degraded_seconds + 60)
        make_job(user, type="tasks.quick_add", created_at=waited, enqueued_at=waited)
        opened = CliRunner().invoke(main, ["status", "incident", "open", "Delayed reminders",
                                           "--component", "notifications", "--severity", "minor"])
        assert opened.exit_code == 0, opened.output

        page.goto(f"{live_server.url}/status")
        expect(components.get_by_role("listitem").filter(has_text="Job processing (interactive)")).to_contain_text(
            "degraded")
        incident = page.get_by_role("region", name="Incident")
        expect(incident).to_contain_text("Delayed reminders")
        expect(incident).to_contain_text("Notifications")
        expect(page.locator("#overall")).to_contain_text("degraded")

        # The web client says so on every screen, signed out too.
        page.goto(f"{live_server.url}/app/")
        expect(page.get_by_role("status", name="Service status")).to_contain_text("Delayed reminders")
    status.forget_cached(cache_redis())
