"""POST /v1/jobs/batch: an app flushing its offline queue in one request."""
from __future__ import annotations

import random
import uuid

import pytest
import requests
from sqlalchemy import func, select

from api import create_app
from shared import db
from shared.models import Job
from tests.factories import make_job
from tests.support import wait_for_job

QUICK = "tasks.quick_add"


def item(text: str, key: str | None = None, **extra) -> dict:
    body = {"type": QUICK, "params": {"text": text}, **extra}
    if key is not None:
        body["idempotency_key"] = key
    return body


def count_jobs() -> int:
    with db.new_session() as session:
        return session.scalar(select(func.count()).select_from(Job))


def test_a_batch_over_http_runs_every_job_on_the_worker_and_answers_in_order(live_server, headers):
    items = [item(f"batch task {n} tomorrow 9am") for n in range(15)]

    response = requests.post(f"{live_server.url}/v1/jobs/batch", json={"jobs": items}, headers=headers, timeout=30)

    assert response.status_code == 200, response.text
    answers = response.json()["items"]
    assert [a["params"]["text"] for a in answers] == [i["params"]["text"] for i in items]
    assert all(a["status"] == "queued" and a["type"] == QUICK for a in answers)
    assert len({a["id"] for a in answers}) == 15
    for answer in answers:
        finished = wait_for_job(requests, answer["id"], headers, base_url=live_server.url)
        assert finished["status"] == "succeeded", finished
        assert finished["result"]["task"]["title"].startswith("batch task")


def test_invalid_items_get_their_own_error_and_the_rest_are_accepted(live_server, headers):
    items = [
        item("first"),
        {"type": "no.such_type", "params": {}},
        {"type": QUICK, "params": {"text": ""}},
        {"type": "ops.backup", "params": {}},  # admin only: unknown to a user
        item("last"),
    ]

    response = requests.post(f"{live_server.url}/v1/jobs/batch", json={"jobs": items}, headers=headers, timeout=30)

    assert response.status_code == 200, response.text
    first, unknown, invalid, admin_only, last = response.json()["items"]
    assert first["params"] == {"text": "first"} and last["params"] == {"text": "last"}
    assert unknown == {"error": {"code": "unknown_job_type", "status": 422, "message": unknown["error"]["message"],
                                 "errors": {"type": ["Unknown job type."]}}}
    assert invalid["error"]["code"] == "invalid_params" and "text" in invalid["error"]["errors"]
    assert admin_only["error"]["code"] == "unknown_job_type"
    assert count_jobs() == 2
    assert wait_for_job(requests, last["id"], headers, base_url=live_server.url)["status"] == "succeeded"


def test_idempotency_keys_replay_per_item_and_conflict_per_item(client, headers):
    first = client.post("/v1/jobs/batch", json={"jobs": [item("a", "k-a"), item("b", "k-b")]}, headers=headers)
    a, b = first.json["items"]

    again = client.post("/v1/jobs/batch", json={"jobs": [
        item("b", "k-b"),  # replayed
        item("changed", "k-a"),  # same key, other body
        item("c", "k-c"),  # new
        item("c", "k-c"),  # the same key twice in one batch: the second replays the first
    ]}, headers=headers)

    assert again.status_code == 200
    replayed, conflict, c1, c2 = again.json["items"]
    assert replayed["id"] == b["id"]
    assert conflict["error"]["code"] == "idempotency_key_reused" and conflict["error"]["status"] == 409
    assert c1["id"] == c2["id"] != a["id"]
    assert count_jobs() == 3


def test_a_key_of_another_user_never_replays_their_job(client, headers, other_headers):
    theirs = client.post("/v1/jobs/batch", json={"jobs": [item("secret", "shared-key")]}, headers=other_headers)
    mine = client.post("/v1/jobs/batch", json={"jobs": [item("secret", "shared-key")]}, headers=headers)

    assert mine.json["items"][0]["id"] != theirs.json["items"][0]["id"]
    assert client.get(f"/v1/jobs/{theirs.json['items'][0]['id']}", headers=headers).status_code == 404


def test_items_past_the_active_jobs_cap_are_refused_one_by_one(settings, user, headers):
    client = create_app(settings.replace(max_active_jobs_per_user=3)).test_client()
    make_job(user, status="running")

    response = client.post("/v1/jobs/batch", json={"jobs": [item(f"t{n}") for n in range(4)]}, headers=headers)

    assert response.status_code == 200
    answers = response.json["items"]
    assert [a["status"] if "id" in a else a["error"]["code"] for a in answers] == [
        "queued", "queued", "too_many_active_jobs", "too_many_active_jobs"]
    assert answers[2]["error"]["status"] == 429
    assert count_jobs() == 3


def test_a_batch_counts_its_items_against_the_request_rate_limit(settings, headers):
    client = create_app(settings.replace(rate_limit_enabled=True, rate_limit_per_minute=6, rate_limit_burst=100,
    )).test_client()
    ip = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    batch = {"jobs": [item(f"t{n}") for n in range(5)]}

    statuses = [client.post("/v1/jobs/batch", json=batch, headers=headers, environ_base={"REMOTE_ADDR": ip}).status_code
                for _ in range(2)]

    assert statuses == [200, 429]  # 5 items, then 5 more of a limit of 6
    assert count_jobs() == 5


def test_a_batch_of_replays_and_refusals_only_sends_nothing_and_answers_200(client, headers):
    response = client.post("/v1/jobs/batch", json={"jobs": [{"type": "nope", "params": {}}]}, headers=headers)

    assert response.status_code == 200
    assert response.json["items"][0]["error"]["code"] == "unknown_job_type"
    assert count_jobs() == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"jobs": []}, "jobs"),
        ({"jobs": [item(f"t{n}") for n in range(101)]}, "jobs"),
        ({}, "jobs"),
        ({"jobs": {"type": QUICK}}, "jobs"),
        ({"jobs": ["tasks.quick_add"]}, "jobs"),
        ({"jobs": [{"params": {"text": "x"}}]}, "jobs"),
        ({"jobs": [{"type": QUICK, "params": ["x"]}]}, "jobs"),
        ({"jobs": [{"type": {"nested": ["junk"]}, "params": {}}]}, "jobs"),
        ({"jobs": [item("x", user_id=str(uuid.uuid4()))]}, "jobs"),
        ({"jobs": [item("x", id=str(uuid.uuid4()))]}, "jobs"),
        ({"jobs": [item("x", "   ")]}, "jobs"),
        ({"jobs": [item("x", "k" * 256)]}, "jobs"),
    ],
)
def test_malformed_batches_are_422_naming_the_field_and_write_nothing(client, headers, body, field):
    response = client.post("/v1/jobs/batch", json=body, headers=headers)

    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert field in response.json["errors"]
    assert count_jobs() == 0


@pytest.mark.parametrize("raw", [
    b'{"jobs": [{"type": "tasks.quick_add", "params": {"text": "a\\u0000b"}}]}',
    b'{"jobs": [{"type": "tasks.quick_add\\u0000", "params": {}}]}',
    b'{"jobs": [{"type": "tasks.quick_add", "params": {"text": "x"}, "idempotency_key": "\\u0000"}]}',
    b'{"jobs": ' + b"[" * 200 + b"]" * 200 + b"}",
    b'{"jobs": [{"type": "tasks.quick_add", "params": {"text": NaN}}]}',
    b'{"jobs": [',
])
def test_hostile_bodies_are_400_or_422_json_and_write_nothing(live_server, headers, raw):
    response = requests.post(f"{live_server.url}/v1/jobs/batch", data=raw, timeout=10,
                             headers={**headers, "Content-Type": "application/json"})

    assert response.status_code in (400, 422), response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["code"]
    assert count_jobs() == 0


def test_a_batch_needs_a_token(client):
    response = client.post("/v1/jobs/batch", json={"jobs": [item("x")]})

    assert response.status_code == 401
    assert count_jobs() == 0
