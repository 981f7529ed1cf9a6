"""Per-user ownership on every endpoint: another user's rows answer 404, never 403, never data."""
from __future__ import annotations

import re
import uuid

import pytest

from shared.db import session_scope
from shared.models import (
    AgentThread,
    CalendarEvent,
    Device,
    Job,
    MailMessage,
    Memory,
    ProposedAction,
    Schedule,
    Task,
    User,
    Webhook,
)
from tests.factories import at, make_task

# Every `<uuid:name>` in a route must name a kind of row here; a new one needs a factory.
ROW_KINDS = {"task_id": "task", "job_id": "job", "schedule_id": "schedule", "event_id": "event",
             "message_id": "message", "action_id": "action", "thread_id": "thread", "device_id": "device",
             "webhook_id": "webhook", "memory_id": "memory"}
BODIES = {"PATCH": {}, "POST": {}, "PUT": {}}
DUE = at("2026-11-27T16:00:00")


def make_job(user: User, *, status: str = "queued", **fields) -> Job:
    with session_scope() as session:
        job = Job(user_id=user.id, type="tasks.quick_add", queue="interactive", status=status,
                  params={"text": "secret plans"}, run_token=str(uuid.uuid4()), **fields)
        session.add(job)
    return job


def load(model, row_id):
    with session_scope() as session:
        return session.get(model, row_id)


def id_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every route that takes an id in its path (but the admins': they act on
    every user's rows by design, and refuse users with 403: tests/api/test_admin.py)."""
    routes = []
    for rule in app.url_map.iter_rules():
        if "<uuid:" not in rule.rule or rule.rule.startswith("/v1/admin/"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule))
    return routes


def fill(rule: str, ids: dict[str, str]) -> str:
    def replace(match):
        name = match.group(1)
        assert name in ROW_KINDS, f"{rule}: add a row factory for <uuid:{name}> to test_ownership.py"
        return ids[ROW_KINDS[name]]

    return re.sub(r"<uuid:(\w+)>", replace, rule)


def assert_not_found(response, context):
    assert response.status_code == 404, (context, response.status_code, response.get_data(as_text=True))
    assert response.is_json, context
    body = response.get_json()
    assert body["code"] == "not_found", context
    assert "secret" not in response.get_data(as_text=True), context


@pytest.fixture
def theirs(other_user):
    """One of each kind of row, all belonging to `other_user`."""
    task = make_task(other_user, title="secret task", notes="secret notes", tags=["secret"])
    job = make_job(other_user)
    with session_scope() as session:
        schedule = Schedule(user_id=other_user.id, cron="0 8 * * *", timezone="UTC", job_type="tasks.quick_add",
                            params={"text": "secret plans"})
        event = CalendarEvent(user_id=other_user.id, external_id="e1", summary="secret meeting",
                              start_at=DUE, end_at=DUE)
        message = MailMessage(user_id=other_user.id, external_id="m1", subject="secret mail", date=DUE)
        action = ProposedAction(user_id=other_user.id, job_id=job.id, kind="mail.create_draft", summary="secret",
                                params={"to": ["a@example.com"], "subject": "secret", "body": "secret"})
        thread = AgentThread(user_id=other_user.id, title="secret thread")
        device = Device(user_id=other_user.id, platform="fcm", token="secret-token", token_hash="0" * 64,
                        name="secret phone")
        webhook = Webhook(user_id=other_user.id, url="https://hooks.example/secret", events=["job.failed"],
                          secret_encrypted="secret")
        memory = Memory(user_id=other_user.id, text="secret fact", source={"kind": "user"})
        session.add_all([schedule, event, message, action, thread, device, webhook, memory])
    return {"task": str(task.id), "job": str(job.id), "schedule": str(schedule.id), "event": str(event.id),
            "message": str(message.id), "action": str(action.id), "thread": str(thread.id),
            "device": str(device.id), "webhook": str(webhook.id), "memory": str(memory.id)}


def test_there_are_id_routes_to_check(app):
    rules = {rule for _method, rule in id_routes(app)}
    assert {"/v1/tasks/<uuid:task_id>", "/v1/jobs/<uuid:job_id>", "/v1/jobs/<uuid:job_id>/cancel"} <= rules


def test_every_id_route_answers_404_for_another_users_row(app, client, headers, theirs):
    for method, rule in id_routes(app):
        path = fill(rule, theirs)
        response = client.open(path, method=method, headers=headers, json=BODIES.get(method))
        assert_not_found(response, (method, rule))


def test_an_admin_gets_404_too_on_user_endpoints(app, client, admin_headers, theirs):
    for method, rule in id_routes(app):
        response = client.open(fill(rule, theirs), method=method, headers=admin_headers, json=BODIES.get(method))
        assert_not_found(response, (method, rule))


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "00000000-0000-0000-0000-00000000000g", "%00", "'%20OR%201=1"])
def test_a_malformed_id_is_404_json(app, client, headers, bad_id):
    for method, rule in id_routes(app):
        path = re.sub(r"<uuid:\w+>", bad_id, rule)
        assert_not_found(client.open(path, method=method, headers=headers, json=BODIES.get(method)), (method, path))


def test_an_unknown_id_is_404_json(app, client, headers):
    for method, rule in id_routes(app):
        path = re.sub(r"<uuid:\w+>", str(uuid.uuid4()), rule)
        assert_not_found(client.open(path, method=method, headers=headers, json=BODIES.get(method)), (method, path))


def test_another_users_task_is_untouched(client, headers, other_user, other_headers):
    task = make_task(other_user, title="secret task", tags=["secret"])

    assert_not_found(client.get(f"/v1/tasks/{task.id}", headers=headers), "get")
    assert_not_found(client.patch(f"/v1/tasks/{task.id}", headers=headers,
                                  json={"title": "mine now", "done": True, "tags": ["pwned"]}), "patch")
    assert_not_found(client.delete(f"/v1/tasks/{task.id}", headers=headers), "delete")

    stored = load(Task, task.id)
    assert (stored.title, stored.done, stored.tags, stored.user_id) == ("secret task", False, ["secret"], other_user.id)
    # Its owner still sees and edits it.
    assert client.get(f"/v1/tasks/{task.id}", headers=other_headers).get_json()["title"] == "secret task"
    assert client.patch(f"/v1/tasks/{task.id}", headers=other_headers, json={"done": True}).status_code == 200


def test_another_users_job_is_neither_shown_nor_canceled(client, headers, other_user, other_headers):
    job = make_job(other_user)

    assert_not_found(client.get(f"/v1/jobs/{job.id}", headers=headers), "get")
    assert_not_found(client.get(f"/v1/jobs/{job.id}?wait=2", headers=headers), "long-poll")
    assert_not_found(client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": '"x"'}), "etag")
    assert_not_found(client.post(f"/v1/jobs/{job.id}/cancel", headers=headers), "cancel")

    assert load(Job, job.id).status == "queued"
    assert client.get(f"/v1/jobs/{job.id}", headers=other_headers).get_json()["status"] == "queued"


def test_a_patch_cannot_move_a_task_to_another_user(client, user, headers, other_user):
    task = make_task(user)

    response = client.patch(f"/v1/tasks/{task.id}", headers=headers, json={"user_id": str(other_user.id)})

    assert response.status_code == 422
    assert load(Task, task.id).user_id == user.id


def _list_ids(client, path, headers, **query) -> list[str]:
    """Every id of a list, two per page, so the cursor is exercised too."""
    ids, params = [], dict(query, limit=2)
    while True:
        response = client.get(path, headers=headers, query_string=params)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        ids += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            return ids
        params["cursor"] = body["next_cursor"]


@pytest.mark.parametrize("query", [
    {},
    {"status": "all"},
    {"status": "open"},
    {"status": "done"},
    {"tag": "shared"},
    {"due_after": "2000-01-01T00:00:00Z"},
    {"due_before": "2100-01-01T00:00:00Z"},
])
def test_task_lists_never_include_another_users_rows(client, user, headers, other_user, other_headers, query):
    mine = {str(make_task(user, title=f"mine {n}", tags=["shared"], done=n == 0,
                          due_at=DUE).id) for n in range(3)}
    theirs = {str(make_task(other_user, title=f"theirs {n}", tags=["shared"], done=n == 0,
                            due_at=DUE).id) for n in range(3)}

    seen = set(_list_ids(client, "/v1/tasks", headers, **query))
    assert seen and seen <= mine
    assert not seen & theirs
    assert not set(_list_ids(client, "/v1/tasks", other_headers, **query)) & mine


def test_job_lists_never_include_another_users_rows(client, user, headers, other_user, other_headers):
    mine = {str(make_job(user, status=status).id) for status in ("queued", "succeeded", "failed")}
    theirs = {str(make_job(other_user, status=status).id) for status in ("queued", "succeeded", "failed")}

    for query in ({}, {"status": "queued"}, {"type": "tasks.quick_add"}):
        assert set(_list_ids(client, "/v1/jobs", headers, **query)) <= mine
        assert set(_list_ids(client, "/v1/jobs", other_headers, **query)) <= theirs
    assert set(_list_ids(client, "/v1/jobs", headers)) == mine


def test_another_users_cursor_shows_only_my_rows(client, user, headers, other_user, other_headers):
    for n in range(3):
        make_task(other_user, title=f"theirs {n}")
    mine = {str(make_task(user, title=f"mine {n}").id) for n in range(3)}
    their_cursor = client.get("/v1/tasks?limit=1", headers=other_headers).get_json()["next_cursor"]

    body = client.get("/v1/tasks", headers=headers, query_string={"cursor": their_cursor}).get_json()

    assert {item["id"] for item in body["items"]} <= mine
