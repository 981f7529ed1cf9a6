"""Quick add makes repeating tasks: the parser's rule is checked and stored with its start."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.models import utcnow
from tests.support import auth_headers, create_user, wait_for_job

pytestmark = pytest.mark.worker


def test_water_plants_every_monday_9am_is_a_weekly_task_due_next_monday(client, worker):
    user = create_user("quick-plants@example.com", timezone="Europe/Berlin")
    headers = auth_headers(user)
    client.patch("/v1/me", headers=headers, json={"locale": "en-GB"})
    before = utcnow()

    submitted = client.post("/v1/jobs", headers=headers,
                            json={"type": "tasks.quick_add", "params": {"text": "water plants every monday 9am"}})
    job = wait_for_job(client, submitted.json["id"], headers)

    assert job["status"] == "succeeded", job
    task = job["result"]["task"]
    due = datetime.fromisoformat(task["due_at"])
    assert (task["title"], task["repeat"]) == ("water plants", "FREQ=WEEKLY;BYDAY=MO")
    assert (due.weekday(), due.hour, due.minute) == (0, 9, 0)
    assert timedelta(0) < due - before <= timedelta(days=7)
    assert due.tzinfo is not None and due.utcoffset() == due.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
    assert datetime.fromisoformat(task["repeat_start"]) == due
    stored = client.get(f"/v1/tasks/{task['id']}", headers=headers).json
    assert stored["repeat"] == "FREQ=WEEKLY;BYDAY=MO"
