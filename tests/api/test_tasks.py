"""Tests of /v1/tasks: read, filter, edit and delete the user's to-dos (rows made directly)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from shared.db import session_scope
from shared.models import Task, utcnow
from tests.factories import at, make_task

BERLIN = "Europe/Berlin"
UTC = timezone.utc
TASK_KEYS = {"id", "title", "notes", "due_at", "all_day", "priority", "tags", "done", "completed_at",
             "created_at", "updated_at", "remind_at", "reminded_at", "repeat", "repeat_start"}


def load_task(task_id) -> Task:
    with session_scope() as session:
        return session.get(Task, uuid.UUID(str(task_id)))


def list_tasks(client, headers, **query):
    response = client.get("/v1/tasks", headers=headers, query_string=query)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def titles(body: dict) -> list[str]:
    return [item["title"] for item in body["items"]]


def assert_field_error(response, field: str):
    """422, the JSON error shape, and an error naming `field`."""
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert field in body["errors"], body


# -- list ------------------------------------------------------------------------------


def test_list_is_newest_first_in_the_list_shape(client, user, headers):
    base = at("2026-01-01T09:00:00")
    for n in range(3):
        make_task(user, title=f"t{n}", created_at=base + timedelta(minutes=n))

    body = list_tasks(client, headers)

    assert set(body) == {"items", "next_cursor"}
    assert titles(body) == ["t2", "t1", "t0"]
    assert body["next_cursor"] is None
    assert set(body["items"][0]) == TASK_KEYS


def test_list_of_no_tasks_is_empty(client, headers):
    assert list_tasks(client, headers) == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(("status", "expected"), [
    ("open", ["open2", "open1"]),
    ("done", ["done1"]),
    ("all", ["open2", "done1", "open1"]),
])
def test_status_filter(client, user, headers, status, expected):
    base = at("2026-01-01T09:00:00")
    make_task(user, title="open1", created_at=base)
    make_task(user, title="done1", done=True, completed_at=base, created_at=base + timedelta(seconds=1))
    make_task(user, title="open2", created_at=base + timedelta(seconds=2))

    assert titles(list_tasks(client, headers, status=status)) == expected


def test_status_defaults_to_all(client, user, headers):
    make_task(user, title="open")
    make_task(user, title="done", done=True)
    assert sorted(titles(list_tasks(client, headers))) == ["done", "open"]


def test_unknown_status_is_422(client, headers):
    assert_field_error(client.get("/v1/tasks?status=finished", headers=headers), "status")


def test_due_window_compares_instants_across_offsets(client, user, headers):
    make_task(user, title="early", due_at=at("2026-11-27T15:00:00"))
    make_task(user, title="edge", due_at=at("2026-11-27T16:00:00"), timezone=BERLIN)
    make_task(user, title="late", due_at=at("2026-11-27T18:00:00"))
    make_task(user, title="undated")

    # 17:00+01:00 is 16:00Z: due_before is exclusive, due_after inclusive.
    assert titles(list_tasks(client, headers, due_before="2026-11-27T17:00:00+01:00")) == ["early"]
    assert sorted(titles(list_tasks(client, headers, due_before="2026-11-27T17:00:01+01:00"))) == ["early", "edge"]
    assert sorted(titles(list_tasks(client, headers, due_after="2026-11-27T11:00:00-05:00"))) == ["edge", "late"]
    assert titles(list_tasks(client, headers, due_after="2026-11-27T15:30:00Z",
                             due_before="2026-11-27T17:00:00Z")) == ["edge"]


@pytest.mark.parametrize("param", ["due_before", "due_after"])
@pytest.mark.parametrize("value", ["2026-11-27T17:00:00", "2026-11-27", "tomorrow", ""])
def test_due_filter_needs_an_aware_datetime(client, headers, param, value):
    assert_field_error(client.get("/v1/tasks", headers=headers, query_string={param: value}), param)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_due_filter_out_of_range_is_422_not_500(client, headers, value):
    assert_field_error(client.get("/v1/tasks", headers=headers, query_string={"due_before": value}),
                       "due_before")


def test_tag_filter_is_exact_and_case_insensitive(client, user, headers):
    base = at("2026-01-01T09:00:00")
    make_task(user, title="work", tags=["work", "home"], created_at=base)
    make_task(user, title="homework", tags=["homework"], created_at=base + timedelta(seconds=1))
    make_task(user, title="work-late", tags=["work-late"], created_at=base + timedelta(seconds=2))
    make_task(user, title="untagged", created_at=base + timedelta(seconds=3))
    make_task(user, title="also work", tags=["errand", "work"], created_at=base + timedelta(seconds=4))

    assert titles(list_tasks(client, headers, tag="work")) == ["also work", "work"]
    assert titles(list_tasks(client, headers, tag="WoRk")) == ["also work", "work"]
    assert titles(list_tasks(client, headers, tag="nope")) == []


def test_filters_combine(client, user, headers):
    make_task(user, title="match", tags=["x"], due_at=at("2026-05-01T10:00:00"))
    make_task(user, title="done", tags=["x"], due_at=at("2026-05-01T10:00:00"), done=True)
    make_task(user, title="other tag", tags=["y"], due_at=at("2026-05-01T10:00:00"))
    make_task(user, title="too late", tags=["x"], due_at=at("2026-06-01T10:00:00"))

    body = list_tasks(client, headers, status="open", tag="X", due_before="2026-05-02T00:00:00Z",
                      due_after="2026-04-30T00:00:00Z")
    assert titles(body) == ["match"]


@pytest.mark.parametrize("tag", ["", "x" * 65])
def test_bad_tag_filter_is_422(client, headers, tag):
    assert_field_error(client.get("/v1/tasks", headers=headers, query_string={"tag": tag}), "tag")


# -- one task --------------------------------------------------------------------------


def test_get_one_task(client, user, headers):
    task = make_task(user, title="Buy milk", notes="2 litres", priority="high", tags=["errand"])

    response = client.get(f"/v1/tasks/{task.id}", headers=headers)

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == TASK_KEYS
    assert body["id"] == str(task.id)
    assert (body["title"], body["notes"], body["priority"]) == ("Buy milk", "2 litres", "high")
    assert body["tags"] == ["errand"]
    assert body["done"] is False and body["completed_at"] is None and body["due_at"] is None
    assert datetime.fromisoformat(body["created_at"]).utcoffset() == timedelta(0)


@pytest.mark.parametrize(("zone", "due", "shown"), [
    (BERLIN, "2026-11-27T16:00:00", "2026-11-27T17:00:00+01:00"),
    (BERLIN, "2026-07-01T16:00:00", "2026-07-01T18:00:00+02:00"),
    ("America/New_York", "2026-11-27T16:00:00", "2026-11-27T11:00:00-05:00"),
    ("Asia/Kolkata", "2026-11-27T16:00:00", "2026-11-27T21:30:00+05:30"),
    ("UTC", "2026-11-27T16:00:00", "2026-11-27T16:00:00+00:00"),
])
def test_due_at_carries_the_tasks_own_offset(client, user, headers, zone, due, shown):
    task = make_task(user, due_at=at(due), timezone=zone)

    assert client.get(f"/v1/tasks/{task.id}", headers=headers).get_json()["due_at"] == shown
    assert list_tasks(client, headers)["items"][0]["due_at"] == shown


def test_unknown_task_is_404_json(client, headers):
    response = client.get(f"/v1/tasks/{uuid.uuid4()}", headers=headers)
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_tasks_need_a_token(client, user):
    task = make_task(user)
    for method, path in [("GET", "/v1/tasks"), ("GET", f"/v1/tasks/{task.id}"),
                         ("PATCH", f"/v1/tasks/{task.id}"), ("DELETE", f"/v1/tasks/{task.id}")]:
        response = client.open(path, method=method, json={} if method == "PATCH" else None)
        assert response.status_code == 401, (method, path)
        assert response.get_json()["code"] == "unauthorized"
    assert load_task(task.id) is not None


# -- patch -----------------------------------------------------------------------------


def patch(client, headers, task, body):
    return client.patch(f"/v1/tasks/{task.id}", headers=headers, json=body)


@pytest.mark.parametrize(("field", "value"), [
    ("title", "Call mom"),
    ("title", "  indented, with a newline\n"),
    ("notes", "about Sunday"),
    ("notes", ""),
    ("priority", "low"),
    ("priority", "normal"),
    ("priority", "high"),
    ("priority", "urgent"),
    ("all_day", True),
    ("tags", []),
    ("tags", ["family", "phone"]),
])
def test_patch_each_field(client, user, headers, field, value):
    task = make_task(user, title="old", notes="old notes", tags=["old"], created_at=at("2026-01-01T00:00:00"),
                     updated_at=at("2026-01-01T00:00:00"))

    response = patch(client, headers, task, {field: value})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body[field] == value
    assert getattr(load_task(task.id), field) == value
    assert client.get(f"/v1/tasks/{task.id}", headers=headers).get_json()[field] == value


def test_patch_several_fields_at_once_and_empty_patch(client, user, headers):
    task = make_task(user, title="old", updated_at=at("2026-01-01T00:00:00"))

    body = patch(client, headers, task, {"title": "new", "priority": "urgent", "tags": ["a"]}).get_json()
    assert (body["title"], body["priority"], body["tags"]) == ("new", "urgent", ["a"])
    assert datetime.fromisoformat(body["updated_at"]) > at("2026-01-01T00:00:00")

    response = patch(client, headers, task, {})
    assert response.status_code == 200
    assert response.get_json()["title"] == "new"


def test_done_true_sets_completed_at_and_false_clears_it(client, user, headers):
    task = make_task(user)
    before = utcnow()

    body = patch(client, headers, task, {"done": True}).get_json()
    assert body["done"] is True
    completed_at = datetime.fromisoformat(body["completed_at"])
    assert before - timedelta(seconds=1) <= completed_at <= utcnow() + timedelta(seconds=1)
    assert load_task(task.id).completed_at == completed_at

    # Marking a done task done again keeps when it was first completed.
    assert patch(client, headers, task, {"done": True, "title": "x"}).get_json()["completed_at"] == body["completed_at"]

    body = patch(client, headers, task, {"done": False}).get_json()
    assert body["done"] is False and body["completed_at"] is None
    stored = load_task(task.id)
    assert stored.done is False and stored.completed_at is None

    assert [t["id"] for t in list_tasks(client, headers, status="open")["items"]] == [str(task.id)]


def test_tags_are_lowercased_and_deduplicated_in_order(client, user, headers):
    task = make_task(user)

    body = patch(client, headers, task, {"tags": ["Work", "HOME", "work", "home", "Errand-1", "x_y"]}).get_json()

    assert body["tags"] == ["work", "home", "errand-1", "x_y"]
    assert load_task(task.id).tags == ["work", "home", "errand-1", "x_y"]
    assert titles(list_tasks(client, headers, tag="HOME")) == ["a task"]


def test_patch_due_at_with_an_offset_stores_the_instant(client, user, headers):
    task = make_task(user, timezone=BERLIN)

    body = patch(client, headers, task, {"due_at": "2026-11-28T01:00:00+09:00"}).get_json()

    assert load_task(task.id).due_at == at("2026-11-27T16:00:00")
    assert body["due_at"] == "2026-11-27T17:00:00+01:00"
    assert client.get(f"/v1/tasks/{task.id}", headers=headers).get_json()["due_at"] == "2026-11-27T17:00:00+01:00"
    assert titles(list_tasks(client, headers, due_before="2026-11-27T16:00:01Z")) == ["a task"]


def test_patch_due_at_null_clears_it(client, user, headers):
    task = make_task(user, due_at=at("2026-11-27T16:00:00"))

    body = patch(client, headers, task, {"due_at": None}).get_json()

    assert body["due_at"] is None
    assert load_task(task.id).due_at is None


@pytest.mark.parametrize(("body", "field"), [
    ({"priority": "critical"}, "priority"),
    ({"priority": "HIGH"}, "priority"),
    ({"priority": None}, "priority"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": None}, "title"),
    ({"title": "x" * 501}, "title"),
    ({"notes": None}, "notes"),
    ({"notes": "x" * 20001}, "notes"),
    ({"tags": ["has space"]}, "tags"),
    ({"tags": ["#hash"]}, "tags"),
    ({"tags": [""]}, "tags"),
    ({"tags": ["work\n"]}, "tags"),
    ({"tags": ["x" * 65]}, "tags"),
    ({"tags": [3]}, "tags"),
    ({"tags": "work"}, "tags"),
    ({"tags": None}, "tags"),
    ({"tags": [f"t{n}" for n in range(51)]}, "tags"),
    ({"done": "maybe"}, "done"),
    ({"done": None}, "done"),
    ({"due_at": "2026-11-27T17:00:00"}, "due_at"),
    ({"due_at": "tomorrow"}, "due_at"),
    ({"due_at": "0001-01-01T00:00:00+05:00"}, "due_at"),
    ({"due_at": "9999-12-31T23:00:00-05:00"}, "due_at"),
    ({"colour": "red"}, "colour"),
    ({"user_id": "00000000-0000-0000-0000-000000000000"}, "user_id"),
    ({"id": "00000000-0000-0000-0000-000000000000"}, "id"),
    ({"completed_at": "2026-11-27T17:00:00Z"}, "completed_at"),
    ({"timezone": "Asia/Tokyo"}, "timezone"),
    ({"created_at": "2026-11-27T17:00:00Z"}, "created_at"),
])
def test_invalid_patch_is_422_with_field_errors_and_changes_nothing(client, user, headers, body, field):
    task = make_task(user, title="keep", tags=["keep"], priority="normal", timezone=BERLIN)

    assert_field_error(patch(client, headers, task, body), field)

    stored = load_task(task.id)
    assert (stored.title, stored.tags, stored.priority, stored.user_id, stored.timezone, stored.done) == (
        "keep", ["keep"], "normal", user.id, BERLIN, False)


@pytest.mark.parametrize("body", ["[]", '"title"', "3", "null", "{", "not json"])
def test_patch_body_must_be_a_json_object(client, user, headers, body):
    task = make_task(user, title="keep")
    response = client.patch(f"/v1/tasks/{task.id}", headers=headers, data=body, content_type="application/json")
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert response.is_json and "code" in response.get_json()
    assert load_task(task.id).title == "keep"


def test_patch_unknown_task_is_404(client, headers):
    response = client.patch(f"/v1/tasks/{uuid.uuid4()}", headers=headers, json={"title": "x"})
    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


# -- delete ----------------------------------------------------------------------------


def test_delete_then_404(client, user, headers):
    task = make_task(user)
    keep = make_task(user, title="keep")

    response = client.delete(f"/v1/tasks/{task.id}", headers=headers)
    assert response.status_code == 204
    assert response.get_data() == b""

    assert load_task(task.id) is None
    for method in ("GET", "PATCH", "DELETE"):
        response = client.open(f"/v1/tasks/{task.id}", method=method, headers=headers,
                               json={"title": "x"} if method == "PATCH" else None)
        assert response.status_code == 404, method
        assert response.get_json()["code"] == "not_found"
    assert titles(list_tasks(client, headers)) == ["keep"]
    assert load_task(keep.id) is not None
