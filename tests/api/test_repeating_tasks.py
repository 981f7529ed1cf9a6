"""Repeating tasks through the API: PATCH repeat, completing moves due_at (across DST), completions."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.db import session_scope
from shared.models import Task, TaskCompletion, utcnow
from tests.factories import make_task
from tests.shared.test_repeat import transitions
from tests.support import auth_headers, create_user

WEEKLY_MONDAY = "FREQ=WEEKLY;BYDAY=MO"


def patch(client, headers, task_id, body, status=200) -> dict:
    response = client.patch(f"/v1/tasks/{task_id}", headers=headers, json=body)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


def monday_at_nine_before(moment: datetime, zone: ZoneInfo) -> datetime:
    """09:00 local on the Monday at least a week before `moment`, so the series starts on the old offset."""
    day = (moment - timedelta(days=7)).astimezone(zone).date()
    day -= timedelta(days=day.weekday())
    return datetime(day.year, day.month, day.day, 9, tzinfo=zone)


@pytest.fixture
def berlin_user():
    return create_user(f"plants-{uuid.uuid4().hex[:8]}@example.com", timezone="Europe/Berlin")


@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
def test_water_plants_every_monday_keeps_nine_oclock_across_the_next_dst_change(client, zone_name):
    zone = ZoneInfo(zone_name)
    user = create_user(f"plants-{uuid.uuid4().hex[:8]}@example.com", timezone=zone_name)
    headers = auth_headers(user)
    change, _ = transitions(zone, since=utcnow())[0]  # the zone's next DST transition, from zoneinfo
    start = monday_at_nine_before(change, zone)
    task = make_task(user, title="water plants", timezone=zone_name)
    made = patch(client, headers, task.id, {"due_at": start.isoformat(), "repeat": WEEKLY_MONDAY,
                                            "remind_at": (start - timedelta(minutes=15)).isoformat()})
    assert (made["repeat"], local(made["repeat_start"])) == (WEEKLY_MONDAY, start)

    # Postponed to just before the clocks change; completing it twice moves it past the change.
    patch(client, headers, task.id, {"due_at": (change - timedelta(minutes=1)).isoformat(),
                                     "remind_at": (change - timedelta(minutes=16)).isoformat()})
    first = patch(client, headers, task.id, {"done": True})
    second = patch(client, headers, task.id, {"done": True})

    for moved in (first, second):
        due = local(moved["due_at"])
        assert (due.weekday(), due.hour, due.minute) == (0, 9, 0), moved["due_at"]
        assert due.utcoffset() == change.astimezone(zone).utcoffset() != start.utcoffset()
        assert local(moved["remind_at"]) == due - timedelta(minutes=15)
        assert moved["done"] is False and moved["reminded_at"] is None
    assert local(first["due_at"]) > change and local(first["due_at"]) - change < timedelta(days=8)
    assert local(second["due_at"]) - local(first["due_at"]) == timedelta(days=7)
    assert local(second["due_at"]).tzinfo is not None and second["repeat"] == WEEKLY_MONDAY

    listed = client.get(f"/v1/tasks/{task.id}/completions", headers=headers).get_json()
    assert [local(c["due_at"]) for c in listed["items"]] == [local(first["due_at"]), change - timedelta(minutes=1)]
    assert [local(c["next_due_at"]) for c in listed["items"]] == [local(second["due_at"]), local(first["due_at"])]


def test_completing_clears_the_sent_reminder_and_keeps_its_offset(client, berlin_user):
    headers = auth_headers(berlin_user)
    due = utcnow().replace(microsecond=0) + timedelta(hours=2)
    task = make_task(berlin_user, title="water plants", timezone="Europe/Berlin", due_at=due,
                     remind_at=due - timedelta(hours=1), reminded_at=utcnow(), reminder_status="sent",
                     repeat="FREQ=DAILY", repeat_start=due)

    moved = patch(client, headers, task.id, {"done": True})

    assert local(moved["due_at"]) == due + timedelta(days=1) or local(moved["due_at"]).astimezone(
        ZoneInfo("Europe/Berlin")).time() == due.astimezone(ZoneInfo("Europe/Berlin")).time()
    assert local(moved["remind_at"]) == local(moved["due_at"]) - timedelta(hours=1)
    assert moved["reminded_at"] is None
    with session_scope() as session:
        assert session.get(Task, task.id).reminder_status is None


def test_an_overdue_daily_task_moves_past_now_not_to_the_day_after_its_old_due_date(client, user, headers):
    now = utcnow()
    due = (now - timedelta(days=3)).replace(hour=8, minute=0, second=0, microsecond=0)
    task = make_task(user, title="stretch", due_at=due, repeat="FREQ=DAILY", repeat_start=due)

    moved = patch(client, headers, task.id, {"done": True})

    following = local(moved["due_at"])
    assert now < following <= now + timedelta(days=1)
    assert (following.hour, following.minute) == (8, 0)


def test_count_is_not_restarted_by_completions_and_the_last_one_marks_the_task_done(client, user, headers):
    start = (utcnow() + timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    task = make_task(user, title="pills", due_at=start)
    patch(client, headers, task.id, {"repeat": "FREQ=DAILY;COUNT=3"})

    days = [local(patch(client, headers, task.id, {"done": True})["due_at"]) for _ in range(2)]
    last = patch(client, headers, task.id, {"done": True})

    assert days == [start + timedelta(days=1), start + timedelta(days=2)]
    assert last["done"] is True and last["completed_at"] is not None
    assert local(last["due_at"]) == start + timedelta(days=2)
    assert local(last["repeat_start"]) == start  # the DTSTART stayed put
    # Done is done: completing again records nothing.
    patch(client, headers, task.id, {"done": True})
    assert len(client.get(f"/v1/tasks/{task.id}/completions", headers=headers).get_json()["items"]) == 3


def test_until_in_the_past_of_the_next_occurrence_marks_the_task_done(client, user, headers):
    due = (utcnow() + timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    until = (due + timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
    task = make_task(user, title="once more", due_at=due)
    patch(client, headers, task.id, {"repeat": f"FREQ=DAILY;UNTIL={until}"})

    assert patch(client, headers, task.id, {"done": True})["done"] is True


def test_patch_changes_and_clears_the_rule_and_a_task_without_one_is_simply_done(client, user, headers):
    due = (utcnow() + timedelta(days=2)).replace(microsecond=0)
    task = make_task(user, title="rent", due_at=due)

    changed = patch(client, headers, task.id, {"repeat": "freq=monthly;bymonthday=1"})
    cleared = patch(client, headers, task.id, {"repeat": None})
    done = patch(client, headers, task.id, {"done": True})

    assert changed["repeat"] == "FREQ=MONTHLY;BYMONTHDAY=1" and local(changed["repeat_start"]) == due
    assert (cleared["repeat"], cleared["repeat_start"]) == (None, None)
    assert done["done"] is True and local(done["due_at"]) == due
    reopened = patch(client, headers, task.id, {"done": False})
    assert (reopened["done"], reopened["completed_at"]) == (False, None)


@pytest.mark.parametrize(("rule", "status", "code"), [
    ("FREQ=SECONDLY", 422, "validation_error"),
    ("FREQ=MINUTELY", 422, "validation_error"),
    ("FREQ=HOURLY", 422, "validation_error"),
    ("DTSTART:20270101T090000Z\nRRULE:FREQ=DAILY", 422, "validation_error"),
    ("FREQ=DAILY;BYDAY=" + "MO," * 100 + "TU", 422, "validation_error"),
    ("FREQ=WEEKLY;BYDAY=XX", 422, "validation_error"),
    ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", 422, "repeat_no_occurrence"),
    (42, 422, "validation_error"),
    ("FREQ=DAILY\x00", 400, "invalid_characters"),  # the hostile-input guard answers first
])
@pytest.mark.timeout(20)
def test_bad_rules_are_refused_naming_repeat_and_change_nothing(client, user, headers, rule, status, code):
    task = make_task(user, title="water plants", repeat="FREQ=DAILY", repeat_start=utcnow(), due_at=utcnow())

    body = patch(client, headers, task.id, {"repeat": rule, "title": "changed"}, status=status)

    assert body["code"] == code and "repeat" in body["errors"], body
    with session_scope() as session:
        stored = session.get(Task, task.id)
        assert (stored.repeat, stored.title) == ("FREQ=DAILY", "water plants")


def test_completions_are_paginated_newest_first_and_other_users_get_404(client, user, headers, other_headers):
    due = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    task = make_task(user, title="stretch", due_at=due, repeat="FREQ=DAILY", repeat_start=due)
    for _ in range(3):
        patch(client, headers, task.id, {"done": True})

    first = client.get(f"/v1/tasks/{task.id}/completions?limit=2", headers=headers).get_json()
    rest = client.get(f"/v1/tasks/{task.id}/completions?limit=2&cursor={first['next_cursor']}",
                      headers=headers).get_json()

    dues = [local(c["due_at"]) for c in first["items"] + rest["items"]]
    assert dues == [due + timedelta(days=2), due + timedelta(days=1), due]
    assert rest["next_cursor"] is None
    assert set(first["items"][0]) == {"id", "task_id", "due_at", "next_due_at", "completed_at"}
    assert client.get(f"/v1/tasks/{task.id}/completions", headers=other_headers).status_code == 404
    assert client.get(f"/v1/tasks/{uuid.uuid4()}/completions", headers=headers).status_code == 404
    assert client.get(f"/v1/tasks/{task.id}/completions?cursor=junk", headers=headers).status_code == 422
    assert patch(client, other_headers, task.id, {"done": True}, status=404)["code"] == "not_found"


def test_a_second_completion_of_the_same_occurrence_is_not_recorded_twice(user):
    from shared.todos import complete_task

    due = (utcnow() + timedelta(days=1)).replace(microsecond=0)
    task = make_task(user, title="stretch", due_at=due, repeat="FREQ=DAILY", repeat_start=due)
    with session_scope() as session:
        stale = session.get(Task, task.id)  # what a second request read before the first one wrote
        session.expunge(stale)
    with session_scope() as first:
        assert complete_task(session=first, task=first.get(Task, task.id)) is not None
    with session_scope() as second:
        # It finds the occurrence it read already moved on: nothing is completed twice.
        assert complete_task(session=second, task=second.merge(stale, load=False)) is None
    with session_scope() as session:
        assert session.query(TaskCompletion).filter_by(task_id=task.id).count() == 1
        assert session.get(Task, task.id).due_at == due + timedelta(days=1)
