"""/v1/devices, /v1/webhooks and reminders on tasks, as apps and attackers call them."""
from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from py_vapid import Vapid

from api import create_app
from shared.models import utcnow
from shared.settings import Settings
from tests.factories import make_job, make_task

SUBSCRIPTION = {
    "endpoint": "https://127.0.0.1:9/push/abc",
    "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
             "auth": "tBHItJI5svbpez7KI4CCXg"},
}
TOKEN = "dGhpcyBpcyBhIGZha2UgdG9rZW4:APA91bH" + "x" * 100


@pytest.fixture
def notify_app(monkeypatch, tmp_path):
    """The api with Web Push, webhook secrets and (as in tests) private addresses allowed."""
    vapid = Vapid()
    vapid.generate_keys()
    (tmp_path / "vapid.pem").write_bytes(vapid.private_pem())
    monkeypatch.setenv("VAPID_PRIVATE_KEY", str(tmp_path / "vapid.pem"))
    monkeypatch.setenv("ENCRYPTION_KEYS", Fernet.generate_key().decode())
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "true")
    app = create_app(Settings.from_env())
    app.config["TESTING"] = True
    return app


@pytest.fixture
def api(notify_app):
    return notify_app.test_client()


def test_registering_the_same_token_again_updates_the_device(api, headers, other_headers):
    first = api.post("/v1/devices", json={"platform": "fcm", "token": TOKEN, "name": "Pixel"}, headers=headers)
    assert first.status_code == 201, first.json
    assert "token" not in first.json
    again = api.post("/v1/devices", json={"platform": "fcm", "token": TOKEN, "name": "Pixel 8"}, headers=headers)
    assert again.status_code == 200 and again.json["id"] == first.json["id"] and again.json["name"] == "Pixel 8"
    assert [d["id"] for d in api.get("/v1/devices", headers=headers).json["items"]] == [first.json["id"]]

    # Another account signing in on the same phone gets a device of its own; the first stays.
    theirs = api.post("/v1/devices", json={"platform": "fcm", "token": TOKEN}, headers=other_headers)
    assert theirs.status_code == 201 and theirs.json["id"] != first.json["id"]
    assert [d["id"] for d in api.get("/v1/devices", headers=headers).json["items"]] == [first.json["id"]]


def test_knowing_an_endpoint_does_not_take_the_browser_over(notify_app, api, headers, other_headers):
    """The takeover: register the victim's endpoint with your own keys; their pushes must not change."""
    from shared.db import session_scope
    from shared.models import Device

    mine = api.post("/v1/devices", json={"platform": "webpush", "token": SUBSCRIPTION}, headers=headers)
    assert mine.status_code == 201
    stolen = {**SUBSCRIPTION, "keys": {"p256dh": SUBSCRIPTION["keys"]["p256dh"][::-1], "auth": "attackerauth0000"}}
    theirs = api.post("/v1/devices", json={"platform": "webpush", "token": stolen}, headers=other_headers)
    assert theirs.status_code == 201 and theirs.json["id"] != mine.json["id"]
    with session_scope() as session:
        victim = session.get(Device, uuid.UUID(mine.json["id"]))
        assert json.loads(victim.token)["keys"] == SUBSCRIPTION["keys"]
    renewed = {**SUBSCRIPTION, "keys": {**SUBSCRIPTION["keys"], "auth": "renewedauth00000"}}
    again = api.post("/v1/devices", json={"platform": "webpush", "token": renewed}, headers=headers)
    assert again.status_code == 200 and again.json["id"] == mine.json["id"]


def test_devices_are_their_owners_only(api, headers, other_headers):
    device = api.post("/v1/devices", json={"platform": "fcm", "token": TOKEN}, headers=headers).json
    assert api.delete(f"/v1/devices/{device['id']}", headers=other_headers).status_code == 404
    assert api.get("/v1/devices", headers=other_headers).json["items"] == []
    assert api.delete(f"/v1/devices/{device['id']}", headers=headers).status_code == 204
    assert api.delete(f"/v1/devices/{device['id']}", headers=headers).status_code == 404
    assert api.get("/v1/devices").status_code == 401


def test_a_browser_subscription_registers_and_the_vapid_key_is_served(api, headers):
    key = api.get("/v1/devices/webpush-key", headers=headers)
    assert key.status_code == 200 and len(key.json["public_key"]) == 87  # 65 bytes, base64url
    response = api.post("/v1/devices", json={"platform": "webpush", "token": SUBSCRIPTION, "name": "Firefox"},
                        headers=headers)
    assert response.status_code == 201, response.json
    as_text = api.post("/v1/devices", json={"platform": "webpush", "token": json.dumps(SUBSCRIPTION)},
                       headers=headers)
    assert as_text.status_code == 200 and as_text.json["id"] == response.json["id"]


@pytest.mark.parametrize("inner", [
    "[" * 5000 + "]" * 5000,  # deep enough to overflow json's recursion
    '{"endpoint": "https://127.0.0.1:9/\\ud800", "keys": {"p256dh": "a", "auth": "b"}}',
    '{"endpoint": "https://127.0.0.1:9/\\u0000", "keys": {"p256dh": "a", "auth": "b"}}',
    '{"endpoint": "https://127.0.0.1:9/x", "keys": {"p256dh": NaN, "auth": "b"}}',
])
def test_a_web_push_token_sent_as_a_json_string_meets_the_hostile_input_guard(api, headers, inner):
    """The token may be the subscription's JSON as a string: its second parse meets the body's guard
    (a reachable endpoint here, so that nothing else refuses it first)."""
    response = api.post("/v1/devices", json={"platform": "webpush", "token": inner}, headers=headers)
    assert response.status_code == 422, (response.status_code, response.get_data(as_text=True)[:300])
    assert "token" in response.json["errors"]


def test_web_push_unconfigured_says_so(client, headers):
    response = client.get("/v1/devices/webpush-key", headers=headers)
    assert response.status_code == 503 and response.json["code"] == "webpush_not_configured"


@pytest.mark.parametrize("body, field", [
    ({"platform": "apns", "token": TOKEN}, "platform"),
    ({"platform": "fcm", "token": "short"}, "token"),
    ({"platform": "fcm", "token": {"endpoint": "x"}}, "token"),
    ({"platform": "fcm", "token": 12}, "token"),
    ({"platform": "webpush", "token": {"endpoint": "https://push.example/x"}}, "token"),
    ({"platform": "webpush", "token": "{not json"}, "token"),
    ({"platform": "webpush", "token": {"endpoint": 5, "keys": {"p256dh": "a", "auth": "b"}}}, "token"),
    ({"platform": "fcm"}, "token"),
])
def test_bad_devices_are_422_naming_the_field(api, headers, body, field):
    response = api.post("/v1/devices", json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]


def test_a_push_endpoint_at_a_private_address_is_refused(client, headers):
    # The suite's own settings: WEBHOOK_ALLOW_PRIVATE is off, as in production.
    for endpoint in ("https://127.0.0.1/push", "https://10.1.2.3/push", "http://push.example/x",
                     "https://169.254.169.254/latest"):
        response = client.post("/v1/devices", json={"platform": "webpush", "token": {**SUBSCRIPTION,
                                                                                     "endpoint": endpoint}},
                               headers=headers)
        assert response.status_code == 422 and response.json["code"] == "unsafe_url", (endpoint, response.json)


def test_a_webhook_secret_is_shown_once_and_hooks_are_their_owners_only(api, headers, other_headers):
    created = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["job.succeeded",
                                                                                         "task.reminder"]},
                       headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["secret"].startswith("whsec_")
    assert created.headers["Cache-Control"] == "no-store"  # no cache may keep the secret
    listed = api.get("/v1/webhooks", headers=headers).json["items"]
    assert [w["id"] for w in listed] == [created.json["id"]] and "secret" not in listed[0]
    one = api.get(f"/v1/webhooks/{created.json['id']}", headers=headers).json
    assert "secret" not in one and one["events"] == ["job.succeeded", "task.reminder"]
    for method, path in (("get", ""), ("get", "/deliveries"), ("delete", "")):
        response = getattr(api, method)(f"/v1/webhooks/{created.json['id']}{path}", headers=other_headers)
        assert response.status_code == 404
    assert api.get(f"/v1/webhooks/{created.json['id']}/deliveries", headers=headers).json == {
        "items": [], "next_cursor": None}
    assert api.delete(f"/v1/webhooks/{created.json['id']}", headers=headers).status_code == 204


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/hook", "https://localhost/hook", "https://10.0.0.8/hook", "https://192.168.1.1/",
    "https://[::1]/hook", "https://169.254.10.10/", "http://example.com/hook", "ftp://example.com/",
    "https://user:pw@127.0.0.1/", "https://0.0.0.0/", "https://[::ffff:127.0.0.1]/",
])
def test_webhooks_to_private_addresses_are_refused(client, headers, url):
    response = client.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]}, headers=headers)
    assert response.status_code == 422, (url, response.json)
    assert response.json["code"] in ("unsafe_url", "validation_error")


def test_the_metadata_address_is_refused_even_in_tests(api, headers):
    for url in ("http://169.254.169.254/latest/meta-data/", "https://169.254.169.254/",
                "http://[::ffff:169.254.169.254]/"):
        response = api.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]}, headers=headers)
        assert response.status_code == 422 and "not a public address" in response.json["message"], url


@pytest.mark.parametrize("url", [
    "https://localhost/hook",  # the name is ours to resolve: what it resolves to is not theirs to learn
    "https://[::ffff:10.0.0.1]/",  # IPv4-mapped
    "https://[64:ff9b::7f00:1]/", "https://[64:ff9b:1::a00:1]/",  # NAT64 of 127.0.0.1, 10.0.0.1
    "https://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo whose client is 127.0.0.1
])
def test_the_ssrf_guard_refuses_embedded_forms_and_never_names_the_address(client, headers, url):
    response = client.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]}, headers=headers)
    assert response.status_code == 422, (url, response.json)
    text = json.dumps(response.json)
    assert "not a public address" in response.json["message"]
    assert not any(leak in text for leak in ("127.0.0.1", "10.0.0.1", "loopback", "private")), text


@pytest.mark.parametrize("url", ["https://example.com:0/", "https://example.com:8443/", "https://example.com:22/"])
def test_webhooks_take_only_ports_443_and_80(client, headers, url):
    response = client.post("/v1/webhooks", json={"url": url, "events": ["job.failed"]}, headers=headers)
    assert response.status_code == 422 and response.json["code"] == "unsafe_url", (url, response.json)
    assert "port" in response.json["message"].lower()


@pytest.mark.parametrize("body", [
    {"url": "http://127.0.0.1:9/h", "events": []},
    {"url": "http://127.0.0.1:9/h", "events": ["job.exploded"]},
    {"url": "http://127.0.0.1:9/h"},
    {"events": ["job.failed"]},
    {"url": 5, "events": ["job.failed"]},
])
def test_bad_webhooks_are_422(api, headers, body):
    response = api.post("/v1/webhooks", json=body, headers=headers)
    assert response.status_code == 422, response.json


def test_patch_sets_and_moves_a_reminder(client, headers, user):
    task = make_task(user, title="call mom", reminded_at=utcnow() - timedelta(minutes=1),
                     remind_at=utcnow() - timedelta(minutes=2), reminder_status="sent")
    later = (utcnow() + timedelta(hours=2)).isoformat()
    response = client.patch(f"/v1/tasks/{task.id}", json={"remind_at": later}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["remind_at"] is not None and response.json["reminded_at"] is None  # armed again
    assert client.patch(f"/v1/tasks/{task.id}", json={"remind_at": None}, headers=headers).json["remind_at"] is None
    bad = client.patch(f"/v1/tasks/{task.id}", json={"remind_at": "tomorrow"}, headers=headers)
    assert bad.status_code == 422 and "remind_at" in bad.json["errors"]


def test_quick_add_sets_remind_at_when_the_text_names_a_time(client, headers, user):
    from shared import db
    from workers.todos import create_task_from_text

    jobs = [make_job(user), make_job(user)]
    with db.session_scope() as session:
        timed = create_task_from_text(session=session, user=user, text="call mom tomorrow 5pm", job_id=jobs[0].id,
                                      now=utcnow())
        dated = create_task_from_text(session=session, user=user, text="taxes friday", job_id=jobs[1].id,
                                      now=utcnow())
        session.flush()
        assert timed.remind_at == timed.due_at and timed.remind_at is not None
        assert dated.due_at is not None and dated.remind_at is None


def test_submit_may_ask_for_or_refuse_a_push(client, headers):
    response = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "x"}, "notify": True},
                           headers=headers)
    assert response.status_code == 202
    bad = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "x"}, "notify": "loud"},
                      headers=headers)
    assert bad.status_code == 422 and "notify" in bad.json["errors"]


def test_webhook_delivery_jobs_cannot_be_submitted(client, headers):
    response = client.post("/v1/jobs", json={"type": "webhooks.deliver", "params": {
        "delivery_id": "00000000-0000-0000-0000-000000000000"}}, headers=headers)
    assert response.status_code == 422 and response.json["code"] == "unknown_job_type"
    assert "webhooks.deliver" not in [t["type"] for t in client.get("/v1/job-types", headers=headers).json["items"]]


def test_push_settings_are_named_in_problems(monkeypatch):
    monkeypatch.setenv("FCM_API_ROOT", "not a url")
    assert any("FCM_API_ROOT" in p for p in Settings.from_env().problems)
    assert os.environ.get("WEBHOOK_ALLOW_PRIVATE") != "true"  # the suite runs with the production default


def _at_once(count: int, call) -> list:
    """`count` calls started together on threads of their own (each its own request and connection)."""
    import threading

    barrier, answers = threading.Barrier(count), []

    def run(index):
        barrier.wait()
        answers.append(call(index))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


@pytest.mark.truncate  # concurrent requests: each on a connection of its own
def test_the_caps_hold_under_concurrent_requests(notify_app, api, user, headers):
    """Count-then-insert let 12 webhooks past a cap of 10 and 54 devices past 50 on PostgreSQL."""
    from api.resources.devices import MAX_DEVICES_PER_USER
    from api.resources.webhooks import MAX_WEBHOOKS_PER_USER
    from shared.db import session_scope
    from shared.models import Device

    hooks = _at_once(MAX_WEBHOOKS_PER_USER + 6, lambda i: notify_app.test_client().post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:9/h{i}", "events": ["job.failed"]}, headers=headers))
    assert sorted(r.status_code for r in hooks) == [201] * MAX_WEBHOOKS_PER_USER + [409] * 6

    with session_scope() as session:
        session.add_all(Device(user_id=user.id, platform="fcm", token=f"{TOKEN}{i}", token_hash=f"{i:064x}")
                        for i in range(MAX_DEVICES_PER_USER - 4))
    devices = _at_once(10, lambda i: notify_app.test_client().post(
        "/v1/devices", json={"platform": "fcm", "token": f"{TOKEN}-new{i}"}, headers=headers))
    assert sorted(r.status_code for r in devices) == [201] * 4 + [409] * 6


def targets(user) -> bool:
    from shared import db
    from shared.models import User

    with db.session_scope() as session:
        return session.get(User, user.id).has_notification_targets


def test_the_owner_flag_follows_devices_and_webhooks(api, user, other_user, headers, other_headers):
    assert targets(user) is False
    device = api.post("/v1/devices", json={"platform": "fcm", "token": TOKEN}, headers=headers).json
    assert targets(user) is True
    # Another account signing in on the same phone gets a device of its own; the first keeps its.
    mine = api.post("/v1/devices", json={"platform": "fcm", "token": TOKEN}, headers=other_headers).json
    assert (targets(user), targets(other_user)) == (True, True)
    assert api.delete(f"/v1/devices/{device['id']}", headers=headers).status_code == 204
    assert targets(user) is False
    hook = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["job.failed"]},
                    headers=headers).json
    assert targets(user) is True
    assert api.delete(f"/v1/webhooks/{hook['id']}", headers=headers).status_code == 204
    assert targets(user) is False
    assert api.delete(f"/v1/devices/{mine['id']}", headers=other_headers).status_code == 204
    assert targets(other_user) is False


@pytest.mark.truncate
def test_a_finished_job_of_an_owner_without_devices_or_webhooks_skips_the_lookup(user):
    from sqlalchemy import event

    from shared import db
    from shared.notifications import job_finished

    job = make_job(user, status="failed")
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        with db.session_scope() as session:
            assert not job_finished(session=session, job_id=job.id)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # One read of the job with its owner's flag; neither devices nor webhooks.
    assert [s for s in statements if s.split()[0].upper() == "SELECT"] and not any(
        "devices" in s or "webhooks" in s for s in statements), statements
