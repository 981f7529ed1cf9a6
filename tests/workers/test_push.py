"""Pushes and webhooks on a real worker, against fake FCM, Web Push and a webhook receiver.

The real google-auth (the service account's token), FCM HTTP v1 calls, pywebpush (VAPID and
aes128gcm) and standardwebhooks signatures meet fakes that check them (tests/fakes/push_server.py).
The test plays beat: it calls the tick's service functions as the tick task would.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from py_vapid import Vapid
from sqlalchemy import select

from scheduler.reminders import remind, retry_due
from shared import db
from shared.jobs import request_hash
from shared.models import Device, GoogleIntegration, Job, NotificationSend, Task, Webhook, WebhookDelivery, utcnow
from shared.notifications import emit, refresh_targets, token_hash, vapid_public_key
from shared.schedules import system_user
from shared.settings import get_settings
from tests.factories import make_job, make_task
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.push_server import FakeFCM, FakeReceiver, FakeWebPush
from tests.support import (
    WorkerProcess,
    auth_headers,
    create_user,
    environment,
    wait_for_job,
    wait_until,
)

pytestmark = pytest.mark.worker

FERNET_KEY = Fernet.generate_key().decode()


class Fakes:
    def __init__(self, tmp_dir):
        vapid = Vapid()
        vapid.generate_keys()
        self.vapid_pem = tmp_dir / "vapid.pem"
        self.vapid_pem.write_bytes(vapid.private_pem())
        self.fcm = FakeFCM().start()
        self.credentials = self.fcm.write_credentials(tmp_dir / "fcm.json")
        self.receiver = FakeReceiver().start()
        self.openai = FakeOpenAI().start()
        self.webpush = None  # needs the public key, known once the settings are read

    def env(self) -> dict:
        return {
            "FCM_CREDENTIALS_FILE": str(self.credentials),
            "FCM_API_ROOT": self.fcm.url,
            "VAPID_PRIVATE_KEY": str(self.vapid_pem),
            "VAPID_SUBJECT": "mailto:ops@example.com",
            "WEBHOOK_ALLOW_PRIVATE": "true",
            "ENCRYPTION_KEYS": FERNET_KEY,
            "PUSH_HTTP_TIMEOUT": "5",
            "OPENAI_API_KEY": "sk-test-not-secret",
            "OPENAI_BASE_URL": self.openai.url,
            "OPENAI_MODEL": "fake-model",
        }

    def reset(self):
        self.fcm.reset()
        self.webpush.reset()
        self.receiver.reset()

    def stop(self):
        for fake in (self.fcm, self.webpush, self.receiver, self.openai):
            fake.stop()


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    fakes = Fakes(tmp_path_factory.mktemp("push"))
    env = fakes.env()
    with environment(env):
        fakes.webpush = FakeWebPush(vapid_public_key(get_settings())).start()
        yield fakes
    fakes.stop()


@pytest.fixture(scope="module")
def notify_worker(fakes, worker):
    """A worker with the fakes' settings, in place of the suite's."""
    with worker.paused():
        process = WorkerProcess()  # inherits the environment the fakes set
        process.start()
        yield process
        process.stop()


@pytest.fixture
def push(fakes, notify_worker):
    fakes.reset()
    return fakes


def add_device(user, platform: str, token: str) -> Device:
    with db.session_scope() as session:
        identity = token_hash(platform, token if platform == "fcm" else json.loads(token)["endpoint"])
        device = Device(user_id=user.id, platform=platform, token=token, token_hash=identity, name=platform)
        session.add(device)
        session.flush()
        refresh_targets(session=session, user_ids=[user.id])  # as the api's POST /v1/devices does
    return device


def fcm_token() -> str:
    return "fcm-" + uuid.uuid4().hex * 2


def webpush_device(fakes, user):
    subscription = fakes.webpush.subscribe()
    add_device(user, "webpush", json.dumps(subscription.as_json()))
    return subscription


def tick(now=None):
    """What beat's per-minute tick does about notifications."""
    with db.session_scope() as session:
        report = remind(session=session, now=now)
        retry_due(session=session, now=now)
    return report


def sends(**where) -> list[NotificationSend]:
    with db.session_scope() as session:
        stmt = select(NotificationSend)
        for name, value in where.items():
            stmt = stmt.where(getattr(NotificationSend, name) == value)
        return session.scalars(stmt).all()


def counted(worker, name: str, **labels) -> float:
    """A counter's value as the worker's /metrics shows it (0 when not yet counted)."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"http://127.0.0.1:{worker.metrics_port}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


def test_a_due_reminder_reaches_every_device_once_even_when_two_ticks_race(push, notify_worker):
    user = create_user("remind@example.com")
    phones = [fcm_token(), fcm_token()]
    for token in phones:
        add_device(user, "fcm", token)
    browser = webpush_device(push, user)
    task = make_task(user, title="call mom", remind_at=utcnow() - timedelta(seconds=5))
    later = make_task(user, title="not yet", remind_at=utcnow() + timedelta(hours=1))

    reports = []
    threads = [threading.Thread(target=lambda: reports.append(tick())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r.sent for r in reports) == 1
    wait_until(lambda: all(push.fcm.sent_to(t) for t in phones) and push.webpush.received_by(browser),
               timeout=30, message="the reminder on every device")
    time.sleep(1.5)  # time for any duplicate to arrive
    for token in phones:
        [message] = push.fcm.sent_to(token)
        assert message["notification"] == {"title": "call mom", "body": "Reminder"}
        assert message["data"] == {"type": "task.reminder", "task_id": str(task.id)}
    [received] = push.webpush.received_by(browser)
    assert received["title"] == "call mom" and received["data"]["task_id"] == str(task.id)
    assert push.fcm.token_requests == 1  # the service account's token is reused
    assert {s.status for s in sends()} == {"sent"} and len(sends()) == 3
    before = {channel: counted(notify_worker, "notifications_sent_total", channel=channel, status="sent")
              for channel in ("fcm", "webpush")}
    assert before["fcm"] >= 2 and before["webpush"] >= 1
    with db.session_scope() as session:
        assert session.get(Task, task.id).reminded_at is not None
        assert session.get(Task, later.id).reminded_at is None
    # Ticks after it send nothing again.
    tick()
    time.sleep(1)
    assert len(push.fcm.messages) == 2 and len(push.webpush.received) == 1


def test_completing_a_repeating_task_re_arms_its_reminder_for_the_next_occurrence(push, app):
    user = create_user("plants@example.com", timezone="Europe/Berlin")
    token = fcm_token()
    add_device(user, "fcm", token)
    due = utcnow().replace(microsecond=0) + timedelta(minutes=30)
    task = make_task(user, title="water plants", timezone="Europe/Berlin", due_at=due, repeat="FREQ=WEEKLY",
                     repeat_start=due, remind_at=due - timedelta(minutes=15))
    assert tick().sent == 0
    assert tick(now=due - timedelta(minutes=15)).sent == 1  # this week's reminder
    wait_until(lambda: push.fcm.sent_to(token), message="this week's reminder")

    moved = app.test_client().patch(f"/v1/tasks/{task.id}", json={"done": True}, headers=auth_headers(user)).json

    next_remind = due + timedelta(days=7, minutes=-15)
    with db.session_scope() as session:
        stored = session.get(Task, task.id)
        assert (stored.due_at, stored.remind_at) == (due + timedelta(days=7), next_remind), moved
        assert stored.reminded_at is None and stored.reminder_status is None and not stored.done
    assert tick(now=next_remind - timedelta(seconds=1)).sent == 0
    report = tick(now=next_remind)
    assert report.sent == 1
    wait_until(lambda: len(push.fcm.sent_to(token)) == 2, message="next week's reminder")
    time.sleep(1)  # time for any duplicate to arrive
    assert [m["notification"]["title"] for m in push.fcm.sent_to(token)] == ["water plants", "water plants"]
    assert tick(now=next_remind + timedelta(minutes=1)).sent == 0


def test_done_tasks_are_never_reminded_and_old_ones_are_marked_missed(push):
    user = create_user("missed@example.com")
    token = fcm_token()
    add_device(user, "fcm", token)
    done = make_task(user, title="done already", done=True, remind_at=utcnow() - timedelta(minutes=1))
    stale = make_task(user, title="long ago", remind_at=utcnow() - timedelta(hours=2))
    recent = make_task(user, title="during the outage", remind_at=utcnow() - timedelta(minutes=50))

    report = tick()

    assert (report.sent, report.missed) == (1, 1)
    wait_until(lambda: push.fcm.sent_to(token), message="the recent reminder")
    time.sleep(1)
    assert [m["data"]["task_id"] for m in push.fcm.sent_to(token)] == [str(recent.id)]
    with db.session_scope() as session:
        assert session.get(Task, done.id).reminded_at is None
        assert session.get(Task, stale.id).reminder_status == "missed"


def test_a_dead_fcm_token_and_a_gone_subscription_remove_their_devices(push):
    user = create_user("dead@example.com")
    alive, dead = fcm_token(), fcm_token()
    push.fcm.unregistered.add(dead)
    add_device(user, "fcm", alive)
    add_device(user, "fcm", dead)
    browser = webpush_device(push, user)
    # The same browser signed in to a second account earlier: its row of the token dies too.
    other = create_user("dead-too@example.com")
    add_device(other, "webpush", json.dumps(browser.as_json()))
    push.webpush.gone.add(browser.endpoint.rsplit("/", 1)[-1])
    make_task(user, title="ping", remind_at=utcnow())

    tick()

    wait_until(lambda: len(sends(status="removed")) == 2, message="the dead devices removed")
    with db.session_scope() as session:
        left = session.scalars(select(Device.token).where(Device.user_id == user.id)).all()
        assert not session.scalars(select(Device).where(Device.user_id == other.id)).all()
    assert left == [alive]
    assert len(push.fcm.sent_to(alive)) == 1


def test_fcm_503s_are_retried_honouring_retry_after(push):
    user = create_user("retry@example.com")
    token = fcm_token()
    add_device(user, "fcm", token)
    push.fcm.fail(503, times=2, retry_after=1)
    make_task(user, title="flaky", remind_at=utcnow())

    tick()
    deadline = time.monotonic() + 60
    while not push.fcm.sent_to(token) and time.monotonic() < deadline:
        time.sleep(0.5)
        tick()  # beat's next ticks take the retries up when their time comes
    [send] = sends()
    assert send.status == "sent" and send.attempts == 3
    assert len(push.fcm.sent_to(token)) == 1


def test_a_worker_killed_mid_send_duplicates_at_most_one_fcm_push(push, notify_worker):
    user = create_user("killed@example.com")
    token = fcm_token()
    add_device(user, "fcm", token)
    push.fcm.delay = 3  # FCM takes its time to answer: the worker dies meanwhile
    make_task(user, title="kill me", remind_at=utcnow())

    tick()
    wait_until(lambda: sends(status="sending"), message="the send claimed")
    time.sleep(1)
    notify_worker.kill()
    push.fcm.delay = 0
    time.sleep(2.5)  # the fake now accepts the first push: the phone has it, our record does not
    assert len(push.fcm.sent_to(token)) == 1
    notify_worker.start()

    for _ in range(3):  # the claim of the dead worker is handed back once it is stale
        tick(now=utcnow() + timedelta(minutes=5))
    wait_until(lambda: sends(status="sent"), message="the send recorded")
    time.sleep(1)
    tick(now=utcnow() + timedelta(minutes=10))
    time.sleep(1)
    assert len(push.fcm.sent_to(token)) == 2  # the one duplicate FCM's lack of an idempotency key allows
    [send] = sends()
    assert send.status == "sent"


def test_a_finished_export_pushes_and_fires_a_signed_job_succeeded(push, app, notify_worker):
    client = app.test_client()
    user = create_user("export@example.com")
    headers = auth_headers(user)
    token = fcm_token()
    assert client.post("/v1/devices", json={"platform": "fcm", "token": token, "name": "Pixel"},
                       headers=headers).status_code == 201
    response = client.post("/v1/webhooks", json={"url": f"{push.receiver.url}/hooks", "events": ["job.succeeded"]},
                           headers=headers)
    assert response.status_code == 201, response.json
    push.receiver.secret = response.json["secret"]
    assert push.receiver.secret.startswith("whsec_")

    job = client.post("/v1/jobs", json={"type": "account.export", "params": {}}, headers=headers).json
    assert wait_for_job(client, job["id"], headers)["status"] == "succeeded"
    quiet = client.post("/v1/jobs", json={"type": "account.export", "params": {}, "notify": False},
                        headers=headers).json
    assert wait_for_job(client, quiet["id"], headers)["status"] == "succeeded"

    wait_until(lambda: push.fcm.sent_to(token), message="the export's push")
    wait_until(lambda: len(push.receiver.verified()) == 2, message="both signed webhooks")
    [message] = push.fcm.sent_to(token)
    assert message["data"] == {"type": "job.succeeded", "job_id": job["id"], "job_type": "account.export"}
    payloads = [d["payload"] for d in push.receiver.verified()]
    assert {p["data"]["job_id"] for p in payloads} == {job["id"], quiet["id"]}
    assert all(p["type"] == "job.succeeded" for p in payloads)
    deliveries = client.get(f"/v1/webhooks/{response.json['id']}/deliveries", headers=headers).json["items"]
    assert [(d["status"], d["response_code"]) for d in deliveries] == [("succeeded", 200)] * 2
    assert counted(notify_worker, "webhook_deliveries_total", status="succeeded") >= 2
    # Delivery jobs are the platform's: they take none of the user's active-jobs slots.
    with db.session_scope() as session:
        delivery_jobs = session.scalars(select(Job).where(Job.type == "webhooks.deliver")).all()
    assert len(delivery_jobs) == 2 and all(j.slot is None for j in delivery_jobs)


def test_webhook_failures_are_retried_from_the_row_and_a_metadata_url_is_refused_at_delivery(push):
    from shared import crypto

    user = create_user("hooks@example.com")
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    with db.session_scope() as session:
        good = Webhook(user_id=user.id, url=f"{push.receiver.url}/h", events=["task.reminder"],
                       secret_encrypted=crypto.encrypt(secret))
        # Written straight to the table (the api refuses it): the worker must refuse it too.
        metadata = Webhook(user_id=user.id, url="http://169.254.169.254/latest/meta-data/", events=["task.reminder"],
                           secret_encrypted=crypto.encrypt(secret))
        session.add_all([good, metadata])
    push.receiver.secret = secret
    push.receiver.fail(503, times=1)
    make_task(user, title="hook me", remind_at=utcnow())

    tick()
    wait_until(lambda: push.receiver.deliveries, message="the first attempt")
    wait_until(lambda: all(d.attempts == 1 and d.status == "pending" for d in _deliveries()),
               message="both first attempts recorded")
    by_url = {d.webhook_id: d for d in _deliveries()}
    assert by_url[metadata.id].error.startswith("refused") and by_url[good.id].response_code == 503
    assert by_url[good.id].next_attempt_at > utcnow()  # the next one waits on the row, not in the broker

    tick(now=utcnow() + timedelta(minutes=2))
    wait_until(lambda: _deliveries(status="succeeded"), message="the retry delivered")
    assert len(push.receiver.verified()) == 2  # the 503 was verified too, then the retry
    [first, second] = push.receiver.verified()
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]  # receivers can deduplicate
    assert second["payload"]["type"] == "task.reminder"


def _deliveries(**where) -> list[WebhookDelivery]:
    with db.session_scope() as session:
        stmt = select(WebhookDelivery)
        for name, value in where.items():
            stmt = stmt.where(getattr(WebhookDelivery, name) == value)
        return session.scalars(stmt).all()


def test_kick_after_a_lost_message_is_made_up_by_the_tick(push):
    """A push recorded but whose deliver message never left (broker down) goes out on a later tick."""
    user = create_user("lost@example.com")
    token = fcm_token()
    add_device(user, "fcm", token)
    with db.session_scope() as session:
        emit(session=session, user_id=user.id, event_key="test:lost", title="lost", data={"x": 1})
    # (no kick: as if the broker refused it)
    time.sleep(1)
    assert not push.fcm.sent_to(token)
    tick(now=utcnow() + timedelta(seconds=30))
    wait_until(lambda: push.fcm.sent_to(token), message="the tick's delivery")


def test_an_agents_proposed_action_is_pushed_with_its_action_id(push, app):
    client = app.test_client()
    user = create_user("agent@example.com")
    headers = auth_headers(user)
    token = fcm_token()
    add_device(user, "fcm", token)
    make_task(user, title="Write report", priority="urgent")
    push.openai.script(
        push.openai.tool_call("propose_event", {"summary": "Write report", "start": "2026-12-01T11:00:00",
                                                "end": "2026-12-01T12:30:00"}),
        push.openai.reply("Report after standup."),
    )
    job = client.post("/v1/jobs", json={"type": "agent.plan_day", "params": {"date": "2026-12-01"}},
                      headers=headers).json
    job = wait_for_job(client, job["id"], headers)
    assert job["status"] == "succeeded", job
    [action] = job["result"]["proposed_actions"]

    wait_until(lambda: len(push.fcm.sent_to(token)) == 2, message="the action's and the job's pushes")
    by_type = {m["data"]["type"]: m for m in push.fcm.sent_to(token)}
    assert by_type["action.proposed"]["data"]["action_id"] == action["action_id"]
    assert by_type["action.proposed"]["data"]["job_id"] == job["id"]
    assert by_type["job.succeeded"]["data"]["job_id"] == job["id"]


def test_a_google_grant_turning_reauth_required_is_pushed_once(push):
    from shared.jobtypes import REGISTRY
    from workers.google.auth import mark_reauth_required
    from workers.job_runner import JobContext

    user = create_user("google@example.com")
    token = fcm_token()
    add_device(user, "fcm", token)
    with db.session_scope() as session:
        integration = GoogleIntegration(user_id=user.id, refresh_token_encrypted="x", scopes=[])
        session.add(integration)

    for _ in range(2):  # a second sync job finding the grant revoked too
        job = make_job(user, type="calendar.sync", status="running")
        with db.session_scope() as session:
            ctx = JobContext(session=session, job=session.get(Job, job.id), job_type=REGISTRY["calendar.sync"],
                             run_token=job.run_token)
            mark_reauth_required(ctx, integration.id)

    wait_until(lambda: push.fcm.sent_to(token), message="the reconnect push")
    time.sleep(1.5)
    [message] = push.fcm.sent_to(token)
    assert message["data"] == {"type": "google.reauth_required"}
    assert message["notification"]["title"] == "Reconnect Google"


def _hooked_user(client, push, email: str):
    """A user with a webhook on the receiver (reminders) and an FCM phone; returns (user, headers, hook, token)."""
    user = create_user(email)
    headers = auth_headers(user)
    token = fcm_token()
    assert client.post("/v1/devices", json={"platform": "fcm", "token": token}, headers=headers).status_code == 201
    hook = client.post("/v1/webhooks", json={"url": f"{push.receiver.url}/h", "events": ["task.reminder"]},
                       headers=headers).json
    push.receiver.secret = hook["secret"]
    return user, headers, hook, token


def test_a_user_cannot_stall_the_platforms_webhook_and_push_retries(push, app):
    """The attack: read your delivery's id and attempt, take its retry's Idempotency-Key first,
    cancel its job; before, the tick raised and rolled back every retry and kick of the platform."""
    client = app.test_client()
    user, headers, hook, _ = _hooked_user(client, push, "staller@example.com")
    bystander = create_user("bystander@example.com")
    bystander_token = fcm_token()
    add_device(bystander, "fcm", bystander_token)
    push.receiver.fail(503, times=1)
    make_task(user, title="stall me", remind_at=utcnow())
    tick()
    wait_until(lambda: _deliveries(status="pending") and _deliveries()[0].attempts == 1, message="the first attempt")

    [delivery] = client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers).json["items"]
    taken = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "squat"}},
                        headers={**headers, "Idempotency-Key": f"webhook:{delivery['id']}:{delivery['attempts']}"})
    assert taken.status_code == 202, taken.json

    # Someone else's push whose kick was lost waits for the same tick.
    with db.session_scope() as session:
        emit(session=session, user_id=bystander.id, event_key="test:bystander", title="hi")
    tick(now=utcnow() + timedelta(minutes=2))
    wait_until(lambda: _deliveries(status="succeeded"), message="the retry delivered")
    wait_until(lambda: push.fcm.sent_to(bystander_token), message="the bystander's push")

    # The platform's jobs are not the user's to see or cancel.
    with db.session_scope() as session:
        platform_jobs = session.scalars(select(Job).where(Job.type == "webhooks.deliver")).all()
    assert platform_jobs and all(j.user_id != user.id for j in platform_jobs)
    assert all(j.params["user_id"] == str(user.id) for j in platform_jobs)
    assert client.post(f"/v1/jobs/{platform_jobs[0].id}/cancel", headers=headers).status_code == 404
    assert client.get(f"/v1/jobs/{platform_jobs[0].id}", headers=headers).status_code == 404
    assert "webhooks.deliver" not in {j["type"] for j in client.get("/v1/jobs", headers=headers).json["items"]}


def _pending_delivery(hook_id, user, *, job_status: str | None = None, attempts: int = 0, **values):
    """A delivery waiting for the tick, with (optionally) its attempt's job already ended."""
    with db.session_scope() as session:
        delivery = WebhookDelivery(webhook_id=uuid.UUID(hook_id), user_id=user.id, event="task.reminder",
                                   event_key=f"test:{uuid.uuid4()}", status="pending", attempts=attempts,
                                   next_attempt_at=utcnow(), payload={"type": "task.reminder", "data": {}},
                                   **values)
        session.add(delivery)
        session.flush()
        if job_status:
            params = {"delivery_id": str(delivery.id), "user_id": str(user.id)}
            session.add(Job(user_id=system_user(session).id, type="webhooks.deliver", queue="sync",
                            status=job_status, params=params, internal_key=f"webhook:{delivery.id}:{attempts}",
                            request_hash=request_hash("webhooks.deliver", params), run_token=str(uuid.uuid4())))
        return delivery


def test_a_delivery_whose_job_ended_without_sending_is_retried_then_given_up(push, app):
    """A webhooks.deliver job canceled (or killed) before it claimed its row never strands the delivery."""
    client = app.test_client()
    user, headers, hook, _ = _hooked_user(client, push, "stranded@example.com")
    stranded = _pending_delivery(hook["id"], user, job_status="canceled")

    tick()  # the canceled attempt counts as one that failed
    [delivery] = _deliveries()
    assert delivery.status == "pending" and delivery.attempts == 1 and "canceled" in delivery.error
    assert delivery.next_attempt_at > utcnow()
    tick(now=delivery.next_attempt_at + timedelta(seconds=1))
    wait_until(lambda: _deliveries(status="succeeded"), message="the next attempt delivered")
    assert _deliveries(status="succeeded")[0].id == stranded.id

    # One whose day is over is given up, as a failed call would be.
    old = _pending_delivery(hook["id"], user, job_status="failed", attempts=9,
                            created_at=utcnow() - timedelta(hours=25))
    tick()
    [given_up] = _deliveries(id=old.id)
    assert given_up.status == "failed" and given_up.error.startswith("gave up")


def test_one_bad_row_never_stops_the_tick(push, app):
    """A delivery whose next attempt cannot be queued is skipped and counted; the rest go."""
    from shared import metrics

    client = app.test_client()
    user, headers, hook, _ = _hooked_user(client, push, "badrow@example.com")
    bad = _pending_delivery(hook["id"], user)
    good = _pending_delivery(hook["id"], user)
    with db.session_scope() as session:
        # A job already holding the bad one's key, for another body: its submission raises.
        session.add(Job(user_id=system_user(session).id, type="webhooks.deliver", queue="sync", status="queued",
                        params={}, internal_key=f"webhook:{bad.id}:0", request_hash="x" * 64,
                        run_token=str(uuid.uuid4())))
    failures = metrics.TICK_ROW_FAILURES.labels("webhook")._value.get()
    tick()
    assert metrics.TICK_ROW_FAILURES.labels("webhook")._value.get() == failures + 1
    wait_until(lambda: _deliveries(status="succeeded"), message="the other delivery")
    assert [d.id for d in _deliveries(status="succeeded")] == [good.id]
