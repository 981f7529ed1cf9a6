"""Cursor pagination, through /v1/tasks: limits, walking every page, ties, bad cursors."""
from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest

from api.pagination import encode_cursor
from tests.factories import at, make_task

BASE = at("2026-03-01T12:00:00")


def cursor_of(payload) -> str:
    """A cursor built by hand, as a client tampering with one would."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def make_tasks(user, count: int, *, same_time: bool = False, **fields) -> list[str]:
    """`count` tasks, newest last; all at one instant when `same_time`. Returns their ids."""
    return [
        str(make_task(user, title=f"t{n}", created_at=BASE if same_time else BASE + timedelta(seconds=n),
                      **fields).id)
        for n in range(count)
    ]


def walk(client, headers, **query) -> tuple[list[str], int]:
    """Follow next_cursor to the end; the ids in order and the number of pages."""
    ids, pages, cursor = [], 0, None
    while True:
        params = dict(query, **({"cursor": cursor} if cursor else {}))
        response = client.get("/v1/tasks", headers=headers, query_string=params)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        pages += 1
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 200, "the cursor does not advance"


def test_default_limit_is_20(client, user, headers):
    ids = make_tasks(user, 21)

    body = client.get("/v1/tasks", headers=headers).get_json()

    assert [item["id"] for item in body["items"]] == ids[::-1][:20]
    assert isinstance(body["next_cursor"], str) and body["next_cursor"]


def test_max_limit_is_100(client, user, headers):
    make_tasks(user, 101)

    body = client.get("/v1/tasks?limit=100", headers=headers).get_json()

    assert len(body["items"]) == 100
    assert body["next_cursor"] is not None


def test_exactly_limit_rows_has_no_next_cursor(client, user, headers):
    make_tasks(user, 5)
    body = client.get("/v1/tasks?limit=5", headers=headers).get_json()
    assert len(body["items"]) == 5 and body["next_cursor"] is None


@pytest.mark.parametrize("limit", ["101", "0", "-1", "abc", "1.5", ""])
def test_bad_limit_is_422(client, headers, limit):
    response = client.get("/v1/tasks", headers=headers, query_string={"limit": limit})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "validation_error" and "limit" in body["errors"]


@pytest.mark.parametrize("limit", [1, 3, 7, 20, 100])
def test_walking_the_pages_returns_every_task_once_in_order(client, user, headers, limit):
    ids = make_tasks(user, 23)

    seen, pages = walk(client, headers, limit=limit)

    assert seen == ids[::-1]
    assert pages == max(1, -(-23 // limit))


@pytest.mark.parametrize("limit", [1, 2, 4, 5])
def test_identical_created_at_still_returns_every_task_once(client, user, headers, limit):
    tied = make_tasks(user, 9, same_time=True)
    before = str(make_task(user, title="before", created_at=BASE - timedelta(microseconds=1)).id)
    after = str(make_task(user, title="after", created_at=BASE + timedelta(microseconds=1)).id)

    seen, _ = walk(client, headers, limit=limit)

    assert len(seen) == len(set(seen)) == 11
    assert seen[0] == after and seen[-1] == before
    assert set(seen[1:-1]) == set(tied)


def test_pages_with_filters(client, user, headers):
    wanted = []
    for n in range(30):
        tags = ["x"] if n % 3 else ["y"]
        done = n % 5 == 0
        due = BASE + timedelta(days=n)
        task = make_task(user, title=f"t{n}", tags=tags, done=done, due_at=due,
                         created_at=BASE + timedelta(seconds=n // 2))  # pairs share created_at
        if tags == ["x"] and not done and n >= 4:
            wanted.append(str(task.id))

    seen, pages = walk(client, headers, limit=4, tag="X", status="open",
                       due_after=(BASE + timedelta(days=4)).isoformat())

    assert sorted(seen) == sorted(wanted) and len(seen) == len(set(seen))
    assert pages == -(-len(wanted) // 4)


def test_a_cursor_survives_a_deleted_row(client, user, headers):
    ids = make_tasks(user, 5)
    first = client.get("/v1/tasks?limit=2", headers=headers).get_json()
    # The row the cursor points at goes away; the next page still starts right after it.
    assert client.delete(f"/v1/tasks/{ids[3]}", headers=headers).status_code == 204

    body = client.get("/v1/tasks", headers=headers, query_string={"limit": 2, "cursor": first["next_cursor"]})

    assert [item["id"] for item in body.get_json()["items"]] == [ids[2], ids[1]]


# A fixed id, not uuid4(): the test ids must be the same in every pytest-xdist worker.
SOME_ID = "5f0c1a52-7c1e-4d0b-9a64-3c0e2f1b8d27"


@pytest.mark.parametrize("cursor", [
    "garbage",
    "!!!!",
    "é",
    "x" * 5000,
    cursor_of(b"\xff\xfe\x00"),
    cursor_of({"created_at": "2026-01-01T00:00:00+00:00"}),
    cursor_of(5),
    cursor_of("2026-01-01T00:00:00+00:00"),
    cursor_of([]),
    cursor_of(["2026-01-01T00:00:00+00:00"]),
    cursor_of(["2026-01-01T00:00:00+00:00", SOME_ID, 1]),
    cursor_of(["not a date", SOME_ID]),
    cursor_of(["2026-01-01T00:00:00+00:00", "not a uuid"]),
    cursor_of(["2026-01-01T00:00:00+00:00", 5]),
    cursor_of(["2026-01-01T00:00:00+00:00", None]),
    cursor_of([20260101, SOME_ID]),
    cursor_of(["2026-01-01T00:00:00", SOME_ID]),  # naive
    cursor_of(["0001-01-01T00:00:00+05:00", SOME_ID]),
    cursor_of(["9999-12-31T23:59:59-05:00", SOME_ID]),
    cursor_of(b"[" * 3000),
])
def test_a_garbage_cursor_is_422_json(client, user, headers, cursor):
    make_tasks(user, 2)

    response = client.get("/v1/tasks", headers=headers, query_string={"cursor": cursor})

    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == "validation_error" and "cursor" in body["errors"]


def test_a_well_formed_cursor_of_an_unknown_row_just_pages_from_there(client, user, headers):
    ids = make_tasks(user, 3)
    cursor = encode_cursor(BASE + timedelta(seconds=1, microseconds=1), uuid.uuid4())

    body = client.get("/v1/tasks", headers=headers, query_string={"cursor": cursor}).get_json()

    assert [item["id"] for item in body["items"]] == [ids[1], ids[0]]
