"""Notifications as `make run` runs them: gunicorn, a worker and two beats, against the fakes.

An app registers a phone (the FCM fake) and a browser (a Web Push subscription the test
generates: a real Chromium one would need Google's push service on the internet), quick-adds
"... in 1 minute", and the reminder reaches both once, within 60 s after remind_at and never
before, though two beats tick at every minute boundary. Meanwhile an export finishes, pushes,
and fires a signed job.succeeded that the receiver verifies.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
import requests
from cryptography.fernet import Fernet
from py_vapid import Vapid

from shared.notifications import vapid_public_key
from shared.settings import Settings
from tests.fakes.push_server import FakeFCM, FakeReceiver, FakeWebPush
from tests.support import BeatProcess, ServerProcess, WorkerProcess, environment, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def stack(tmp_path, worker):
    vapid = Vapid()
    vapid.generate_keys()
    (tmp_path / "vapid.pem").write_bytes(vapid.private_pem())
    fcm = FakeFCM().start()
    receiver = FakeReceiver().start()
    env = {
        "FCM_CREDENTIALS_FILE": str(fcm.write_credentials(tmp_path / "fcm.json")),
        "FCM_API_ROOT": fcm.url,
        "VAPID_PRIVATE_KEY": str(tmp_path / "vapid.pem"),
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "SCHEDULE_TICK_SECONDS": "60",  # the production tick: at every minute boundary
    }
    fakes = [fcm, receiver]
    processes = []
    try:
        with environment(env), worker.paused():  # the processes below inherit the environment
            webpush = FakeWebPush(vapid_public_key(Settings.from_env())).start()
            fakes.append(webpush)
            for process in (ServerProcess(), WorkerProcess(), BeatProcess(), BeatProcess()):
                processes.append(process.start())
            yield {"api": processes[0].url, "fcm": fcm, "webpush": webpush, "receiver": receiver,
                   "processes": processes}
            for process in reversed(processes):
                process.stop()
    finally:
        for process in processes:
            process.stop()
        for fake in fakes:
            fake.stop()


def test_a_reminder_a_minute_away_reaches_phone_and_browser_once_on_time(stack):
    api, fcm, webpush, receiver = stack["api"], stack["fcm"], stack["webpush"], stack["receiver"]
    http = requests.Session()
    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
    assert http.post(f"{api}/v1/auth/register", json={"email": email, "password": "s3cret-pass!"}).status_code == 201
    token = http.post(f"{api}/v1/auth/login", json={"email": email, "password": "s3cret-pass!"}).json()
    http.headers["Authorization"] = f"Bearer {token['access_token']}"

    phone = "e2e-phone-" + uuid.uuid4().hex * 2
    assert http.post(f"{api}/v1/devices", json={"platform": "fcm", "token": phone, "name": "Pixel"}).status_code == 201
    key = http.get(f"{api}/v1/devices/webpush-key").json()["public_key"]
    assert key == webpush.vapid_public_key
    browser = webpush.subscribe()
    assert http.post(f"{api}/v1/devices", json={"platform": "webpush", "token": browser.as_json()}).status_code == 201
    hook = http.post(f"{api}/v1/webhooks", json={"url": f"{receiver.url}/hook", "events": ["job.succeeded"]}).json()
    receiver.secret = hook["secret"]

    job = http.post(f"{api}/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "call mom in 1 minute"}})
    assert job.status_code == 202, job.text
    task = _wait_job(http, api, job.json()["id"])["result"]["task"]
    remind_at = datetime.fromisoformat(task["remind_at"]).timestamp()
    assert 50 < remind_at - time.time() <= 61, task

    # While the minute passes: an export, its push and its signed webhook.
    export = http.post(f"{api}/v1/jobs", json={"type": "account.export", "params": {}}).json()
    assert _wait_job(http, api, export["id"])["status"] == "succeeded"
    wait_until(lambda: [m for m in fcm.sent_to(phone) if m["data"].get("job_id") == export["id"]],
               timeout=30, message="the export's push")
    wait_until(lambda: [d for d in receiver.verified() if d["payload"]["data"]["job_id"] == export["id"]],
               timeout=30, message="the export's signed job.succeeded")
    assert all(d["payload"]["type"] == "job.succeeded" for d in receiver.verified())

    def reminders(messages):
        return [m for m in messages if m["data"].get("type") == "task.reminder"]

    wait_until(lambda: reminders(fcm.sent_to(phone)) and reminders(webpush.received_by(browser)),
               timeout=remind_at - time.time() + 75, interval=0.5, message="the reminder on the phone and the browser")
    time.sleep(5)  # both beats ticked at that boundary: a duplicate would be here by now
    [on_phone] = reminders(fcm.sent_to(phone))
    [on_browser] = reminders(webpush.received_by(browser))
    for received in (on_phone, on_browser):
        assert remind_at <= received["at"] <= remind_at + 60, (remind_at, received["at"])
        assert received["data"]["task_id"] == task["id"]
    assert on_phone["notification"]["title"] == "call mom"
    after = http.get(f"{api}/v1/tasks/{task['id']}").json()
    assert after["reminded_at"] is not None
    assert on_browser["title"] == "call mom"


def _wait_job(http, api: str, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = http.get(f"{api}/v1/jobs/{job_id}?wait=5").json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
    raise AssertionError(f"job {job_id} did not finish: {job}")
