"""Google end to end: connect through OAuth, sync jobs on a real worker, reads, writes, faults.

The real google-auth / google-api-python-client talk to tests/fakes/google_server.py.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select, text, update

from shared import crypto, db
from shared import google_oauth as google
from shared.celery_app import app as celery_app
from shared.jobs import send_job, submit_job
from shared.models import CalendarEvent, GoogleIntegration, GooglePendingLink, GoogleWrite, User, utcnow
from shared.settings import get_settings
from tests.factories import load_job, make_job
from tests.fakes.google_server import FakeGoogle
from tests.support import (
    BeatProcess,
    ServerProcess,
    WorkerProcess,
    auth_headers,
    create_user,
    environment,
    wait_for_job,
    wait_until,
)

pytestmark = pytest.mark.worker

KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def fake_google():
    fake = FakeGoogle().start()
    env = {
        **fake.env(),
        "ENCRYPTION_KEYS": KEY,
        "GOOGLE_API_RETRIES": "2",
        "GOOGLE_HTTP_TIMEOUT": "5",
        "GOOGLE_WEBHOOK_URL": "https://assistant.example/v1/integrations/google/push/calendar",
        # The fake speaks plain HTTP on loopback; oauthlib insists on HTTPS otherwise.
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
    }
    with environment(env):
        yield fake
    fake.stop()


@pytest.fixture(scope="module")
def google_worker(fake_google):
    """A worker whose settings point at the fake; any other worker stops taking `sync` meanwhile."""
    others = [name for reply in celery_app.control.ping(timeout=1.0) for name in reply]
    if others:
        celery_app.control.cancel_consumer("sync", destination=others, reply=True)
    process = WorkerProcess(queues="sync")  # the environment above is inherited
    process.start()
    yield process
    process.stop()
    if others:
        celery_app.control.add_consumer("sync", destination=others, reply=True)


@pytest.fixture
def fake(fake_google, google_worker):
    fake_google.reset()
    return fake_google


def link_code_of(response) -> str:
    """The link code the callback's 303 hands to the return_to."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return parse_qs(urlsplit(response.headers["Location"]).query)["link_code"][0]


def connect(client, headers, fake, scopes=None) -> dict:
    """The whole flow: authorize, consent, the browser's callback, the app's complete."""
    response = client.post("/v1/integrations/google/authorize", headers=headers)
    assert response.status_code == 200, response.json
    url = response.json["url"]
    state = parse_qs(urlsplit(url).query)["state"][0]
    code = fake.consent(url, scopes)
    link_code = link_code_of(client.get(f"/v1/integrations/google/callback?code={code}&state={state}"))
    response = client.post("/v1/integrations/google/complete", json={"link_code": link_code}, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def jobs_of(client, headers, type_name) -> list[dict]:
    return client.get(f"/v1/jobs?type={type_name}", headers=headers).json["items"]


def wait_initial_syncs(client, headers):
    done = {}
    for type_name in ("calendar.sync", "mail.sync"):
        (job,) = jobs_of(client, headers, type_name)
        done[type_name] = wait_for_job(client, job["id"], headers, timeout=60)
    return done


def sync(client, headers, type_name, params=None, expect=202) -> dict:
    response = client.post("/v1/jobs", json={"type": type_name, "params": params or {}}, headers=headers)
    assert response.status_code == expect, response.json
    return wait_for_job(client, response.json["id"], headers, timeout=60)


def integration_row(user) -> GoogleIntegration:
    with db.session_scope() as session:
        return session.scalar(select(GoogleIntegration).where(GoogleIntegration.user_id == user.id))


def at(days: float = 0, hours: float = 0) -> str:
    return (utcnow() + timedelta(days=days, hours=hours)).replace(microsecond=0).isoformat()


# -- connect ----------------------------------------------------------------------------


def test_connect_stores_tokens_encrypted_and_starts_both_syncs(client, headers, user, fake, google_worker):
    fake.add_event("Standup", at(1), at(1, 1))
    fake.add_message("Hello there")

    connected = connect(client, headers, fake)

    assert connected["connected"] is True and connected["status"] == "connected"
    with db.get_engine().connect() as connection:
        raw = connection.execute(text(
            "SELECT refresh_token_encrypted, access_token_encrypted FROM google_integrations")).one()
    refresh = fake.refresh_tokens.copy().popitem()[0]
    assert refresh not in raw[0] and "1//" not in raw[0] and "ya29" not in raw[1]
    assert crypto.decrypt(raw[0]) == refresh
    # The PKCE verifier went to the token endpoint (the fake checked it against the challenge).
    assert fake.token_requests[0]["code_verifier"]

    done = wait_initial_syncs(client, headers)
    assert all(job["status"] == "succeeded" for job in done.values()), done
    events = client.get("/v1/calendar/events", headers=headers).json["items"]
    assert [e["summary"] for e in events] == ["Standup"]
    assert set(events[0]) >= {"id", "summary", "description", "start", "end", "location", "attendees", "status"}
    messages = client.get("/v1/mail/messages", headers=headers).json["items"]
    assert [m["subject"] for m in messages] == ["Hello there"]
    assert messages[0]["from"] == "Ada <ada@example.com>" and messages[0]["to"] == ["me@example.com"]
    listing = client.get("/v1/integrations", headers=headers).json["items"][0]
    assert listing["calendar_synced_at"] and listing["mail_synced_at"]
    # No token in any job's params or result, nor in the worker's log.
    for type_name in ("calendar.sync", "mail.sync"):
        assert "ya29" not in str(jobs_of(client, headers, type_name)) and "1//" not in str(jobs_of(client, headers, type_name))
    log = google_worker.log_path.read_text()
    assert "jobs.calendar.sync" in log and "ya29" not in log and "1//" not in log


def test_a_state_is_used_once_and_bound_to_its_user(client, headers, fake):
    url = client.post("/v1/integrations/google/authorize", headers=headers).json["url"]
    state = parse_qs(urlsplit(url).query)["state"][0]
    code = fake.consent(url)
    assert client.get(f"/v1/integrations/google/callback?code={code}&state=forged").json["code"] == "invalid_state"
    assert client.get(f"/v1/integrations/google/callback?code={code}&state={state}").status_code == 303
    again = client.get(f"/v1/integrations/google/callback?code={code}&state={state}")
    assert again.status_code == 400 and again.json["code"] == "invalid_state"


# -- connecting is bound to the user who asked (the consent-phishing fix) ------------------

APP_RETURN = "https://app.example/google-connected"


@pytest.fixture
def api_server(fake):
    """gunicorn on a free port, registered with the fake as the OAuth redirect URI."""
    server = ServerProcess({"OAUTH_RETURN_URLS": f"{APP_RETURN},myapp://google"})
    server.env["GOOGLE_REDIRECT_URI"] = f"{server.url}/v1/integrations/google/callback"
    server.start()
    yield server
    server.stop()


def pending_links() -> list[GooglePendingLink]:
    with db.session_scope() as session:
        return session.scalars(select(GooglePendingLink)).all()


def test_a_consent_url_sent_to_someone_else_links_nobody(api_server, fake):
    bob, alice = create_user(f"bob-{uuid.uuid4().hex[:6]}@example.com"), create_user(f"alice-{uuid.uuid4().hex[:6]}@example.com")
    api = api_server.url
    url = requests.post(f"{api}/v1/integrations/google/authorize", headers=auth_headers(bob), timeout=10).json()["url"]

    # Bob sends the URL to Alice. Her browser carries no token: it opens the URL, she clicks
    # "Allow" at Google, and it follows Google's redirect to our callback and on.
    alices_browser = requests.get(url, timeout=10)

    assert [r.status_code for r in alices_browser.history] == [302, 303]
    assert alices_browser.url.startswith(f"{api}/v1/integrations/google/linked?link_code=")
    link_code = parse_qs(urlsplit(alices_browser.url).query)["link_code"][0]
    assert alices_browser.status_code == 200 and alices_browser.headers["Content-Type"].startswith("text/html")
    assert "Almost done" in alices_browser.text and link_code not in alices_browser.text
    assert "default-src 'none'" in alices_browser.headers["Content-Security-Policy"]
    assert alices_browser.headers["Cache-Control"] == "no-store"
    [google_token] = fake.refresh_tokens
    bobs_view = requests.get(f"{api}/v1/integrations/google", headers=auth_headers(bob), timeout=10).json()
    assert bobs_view["connected"] is False  # the callback linked nothing

    # Alice's app, opened on the page, posts the code with her token: refused, and revoked at Google.
    alices_app = requests.post(f"{api}/v1/integrations/google/complete", json={"link_code": link_code},
                               headers=auth_headers(alice), timeout=10)
    assert alices_app.status_code == 403 and alices_app.json()["code"] == "link_not_yours"
    assert fake.revoked() == {google_token}
    assert pending_links() == []
    # The code is spent: Bob, had he got hold of it, gets nothing either.
    bobs_app = requests.post(f"{api}/v1/integrations/google/complete", json={"link_code": link_code},
                             headers=auth_headers(bob), timeout=10)
    assert bobs_app.status_code == 400 and bobs_app.json()["code"] == "invalid_link_code"
    for person in (bob, alice):
        assert requests.get(f"{api}/v1/integrations/google", headers=auth_headers(person),
                            timeout=10).json()["connected"] is False

    # Bob connecting his own Google account, from his own app, works.
    url = requests.post(f"{api}/v1/integrations/google/authorize", json={"return_to": APP_RETURN},
                        headers=auth_headers(bob), timeout=10).json()["url"]
    to_callback = requests.get(url, allow_redirects=False, timeout=10)
    to_app = requests.get(to_callback.headers["Location"], allow_redirects=False, timeout=10)
    assert to_app.status_code == 303 and to_app.headers["Location"].startswith(APP_RETURN + "?link_code=")
    link_code = parse_qs(urlsplit(to_app.headers["Location"]).query)["link_code"][0]
    done = requests.post(f"{api}/v1/integrations/google/complete", json={"link_code": link_code},
                         headers=auth_headers(bob), timeout=10)
    assert done.status_code == 200 and done.json()["connected"] is True
    assert integration_row(bob) is not None and integration_row(alice) is None


@pytest.mark.parametrize("return_to", [
    "https://app.example/google-connected.evil.example",  # a prefix match would take it
    "https://app.example/google-connected/..",
    "https://app.example/google-connected?x=1",
    "https://evil.example/",
])
def test_return_to_is_matched_exactly(settings, headers, fake, return_to):
    from api import create_app

    client = create_app(settings.replace(oauth_return_urls=(APP_RETURN,))).test_client()
    response = client.post("/v1/integrations/google/authorize", json={"return_to": return_to}, headers=headers)

    assert response.status_code == 422 and response.json["code"] == "invalid_return_to"
    assert client.post("/v1/integrations/google/authorize", json={"return_to": APP_RETURN},
                       headers=headers).status_code == 200


def start_link(client, headers, fake, scopes=None) -> str:
    url = client.post("/v1/integrations/google/authorize", headers=headers).json["url"]
    state = parse_qs(urlsplit(url).query)["state"][0]
    return link_code_of(client.get(f"/v1/integrations/google/callback?code={fake.consent(url, scopes)}&state={state}"))


def test_pending_tokens_are_encrypted_one_use_and_expire(client, headers, user, fake):
    link_code = start_link(client, headers, fake)
    [token] = fake.refresh_tokens
    with db.get_engine().connect() as connection:
        row = connection.execute(text("SELECT * FROM google_pending_links")).mappings().one()
    assert token not in str(dict(row)) and "ya29" not in str(dict(row)) and link_code not in str(dict(row))
    assert crypto.decrypt(row["refresh_token_encrypted"]) == token
    assert timedelta(minutes=9) < row["expires_at"] - row["created_at"] <= timedelta(minutes=10)

    complete = lambda code: client.post("/v1/integrations/google/complete", json={"link_code": code},  # noqa: E731
                                        headers=headers)
    assert complete(link_code).status_code == 200
    assert complete(link_code).json["code"] == "invalid_link_code"  # one use

    stale = start_link(client, headers, fake)
    with db.session_scope() as session:
        session.execute(update(GooglePendingLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert complete(stale).json["code"] == "invalid_link_code"
    assert len(pending_links()) == 1  # left for the sweep, which revokes it at Google first
    with db.session_scope() as session:
        assert google.drop_expired_links(session=session, settings=get_settings()) == 1
    assert pending_links() == [] and len(fake.revoked()) == 1


def test_beat_revokes_and_drops_links_nobody_completed(client, headers, fake):
    start_link(client, headers, fake)
    waiting = start_link(client, headers, fake)
    first, second = fake.refresh_tokens
    with db.session_scope() as session:
        session.execute(update(GooglePendingLink).where(GooglePendingLink.code_hash != google.link_hash(waiting))
                        .values(expires_at=utcnow() - timedelta(seconds=1)))

    beat = BeatProcess(env={"SWEEP_INTERVAL_SECONDS": "1"}).start()  # the google_worker takes the sync queue
    try:
        wait_until(lambda: len(pending_links()) == 1, timeout=60, message="beat to drop the expired link")
    finally:
        beat.stop()

    assert fake.revoked() == {first}
    assert [link.code_hash for link in pending_links()] == [google.link_hash(waiting)]


def test_a_partial_grant_is_kept_and_a_job_needing_what_was_not_granted_fails_naming_it(client, headers, fake):
    granted = [google.CALENDAR_EVENTS, google.GMAIL_COMPOSE]  # "gmail.readonly" unticked at Google

    connected = connect(client, headers, fake, scopes=granted)

    assert connected["scopes"] == granted
    assert client.get("/v1/integrations/google", headers=headers).json["scopes"] == granted
    [calendar_job] = jobs_of(client, headers, "calendar.sync")
    assert jobs_of(client, headers, "mail.sync") == []  # not queued: it could only fail
    assert wait_for_job(client, calendar_job["id"], headers, timeout=60)["status"] == "succeeded"
    mail = sync(client, headers, "mail.sync")
    assert mail["status"] == "failed" and mail["error"]["code"] == "google_scope_missing"
    assert "gmail.readonly" in mail["error"]["message"] and mail["attempts"] == 1


def test_disconnect_revokes_at_google_and_deletes_tokens_and_copies(client, headers, user, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)

    response = client.delete("/v1/integrations/google", headers=headers)

    assert response.status_code == 200 and response.json == {"disconnected": True, "revoked_at_google": True}
    assert all(fake.refresh_tokens.values())  # revoked at the fake
    assert integration_row(user) is None
    assert client.get("/v1/integrations", headers=headers).json["items"][0]["connected"] is False


# -- calendar ---------------------------------------------------------------------------


def test_calendar_full_then_incremental_with_pages_updates_and_deletions(client, headers, fake):
    for i in range(260):  # more than one page of 250
        fake.add_event(f"e{i:03}", at(2, i), at(2, i + 1))
    connect(client, headers, fake)
    first = wait_initial_syncs(client, headers)["calendar.sync"]
    assert first["result"]["mode"] == "full" and first["result"]["pages"] == 2
    assert first["result"]["inserted"] == 260

    moved = next(iter(fake.events))
    fake.update_event(moved, summary="renamed")
    cancelled = list(fake.events)[1]
    fake.cancel_event(cancelled)
    fake.add_event("new one", at(100), at(100, 1))

    second = sync(client, headers, "calendar.sync")

    assert second["result"] == {"mode": "incremental", "pages": 1, "updated": 1, "deleted": 1, "inserted": 1,
                                "push": "open"}
    with db.session_scope() as session:
        rows = {e.external_id: e.summary for e in session.scalars(select(CalendarEvent))}
    assert len(rows) == 260 and rows[moved] == "renamed" and cancelled not in rows
    window = client.get("/v1/calendar/events", query_string={"from": at(99), "to": at(101)}, headers=headers).json
    assert [e["summary"] for e in window["items"]] == ["new one"]
    # Earliest first, across pages.
    starts, cursor, pages = [], None, 0
    while pages == 0 or cursor:
        page = client.get("/v1/calendar/events", query_string={"limit": 100, **({"cursor": cursor} if cursor else {})},
                          headers=headers).json
        starts += [e["start"] for e in page["items"]]
        cursor, pages = page["next_cursor"], pages + 1
    assert pages == 3 and len(starts) == 260 and starts == sorted(starts)


def test_calendar_410_wipes_and_resyncs_in_full(client, headers, fake):
    fake.add_event("keep", at(1), at(1, 1))
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    (kept,) = client.get("/v1/calendar/events", headers=headers).json["items"]
    with db.session_scope() as session:  # a row Google no longer has: the full resync drops it
        user_id = session.scalar(select(GoogleIntegration.user_id))
        session.add(CalendarEvent(user_id=user_id, external_id="stale", summary="stale",
                                  start_at=utcnow(), end_at=utcnow()))
    fake.expire_sync_tokens()

    job = sync(client, headers, "calendar.sync")

    assert job["status"] == "succeeded"
    assert job["result"]["mode"] == "full" and job["result"]["resync_reason"] == "sync_token_expired"
    assert job["result"]["deleted"] == 1
    # The stale row is wiped; the surviving event keeps its id in our API.
    assert [(e["id"], e["summary"]) for e in client.get("/v1/calendar/events", headers=headers).json["items"]] == [
        (kept["id"], "keep")]


def test_calendar_push_notifications_queue_a_sync(client, headers, fake):
    connect(client, headers, fake)
    assert wait_initial_syncs(client, headers)["calendar.sync"]["result"]["push"] == "opened"
    (channel,) = fake.channels
    assert channel["address"] == "https://assistant.example/v1/integrations/google/push/calendar"
    fake.add_event("pushed", at(1), at(1, 1))
    push = "/v1/integrations/google/push/calendar"

    forged = client.post(push, headers=fake.notification_headers() | {"X-Goog-Channel-Token": "forged"})
    unknown = client.post(push, headers=fake.notification_headers() | {"X-Goog-Channel-ID": "nope"})
    handshake = client.post(push, headers=fake.notification_headers(state="sync"))
    assert (forged.status_code, unknown.status_code) == (404, 404)
    assert handshake.status_code == 200 and handshake.json == {"queued": False}
    assert len(jobs_of(client, headers, "calendar.sync")) == 1

    response = client.post(push, headers=fake.notification_headers())

    assert response.status_code == 200 and response.json == {"queued": True}
    newest = jobs_of(client, headers, "calendar.sync")[0]
    job = wait_for_job(client, newest["id"], headers)
    assert job["status"] == "succeeded" and job["result"]["push"] == "open" and len(fake.channels) == 1
    assert [e["summary"] for e in client.get("/v1/calendar/events", headers=headers).json["items"]] == ["pushed"]


# -- mail -------------------------------------------------------------------------------


def test_mail_full_then_history_with_labels_and_deletions_then_404_resync(client, headers, fake):
    kept = fake.add_message("kept")
    gone = fake.add_message("gone")
    connect(client, headers, fake)
    assert wait_initial_syncs(client, headers)["mail.sync"]["result"]["inserted"] == 2

    fake.relabel(kept["id"], ["INBOX"])  # read
    fake.delete_message(gone["id"])
    fake.add_message("fresh", labels=("INBOX", "UNREAD", "IMPORTANT"))

    job = sync(client, headers, "mail.sync")

    assert job["result"]["mode"] == "incremental"
    assert job["result"] | {} == {"mode": "incremental", "pages": 1, "relabeled": 1, "deleted": 1, "inserted": 1}
    items = client.get("/v1/mail/messages", headers=headers).json["items"]
    assert {m["subject"]: m["labels"] for m in items} == {"kept": ["INBOX"], "fresh": ["INBOX", "UNREAD", "IMPORTANT"]}
    important = client.get("/v1/mail/messages?label=IMPORTANT", headers=headers).json["items"]
    assert [m["subject"] for m in important] == ["fresh"]
    assert [m["subject"] for m in client.get("/v1/mail/messages?q=nothing", headers=headers).json["items"]] == []
    assert [m["subject"] for m in client.get("/v1/mail/messages?q=KEPT", headers=headers).json["items"]] == ["kept"]
    assert [m["subject"] for m in client.get("/v1/mail/messages?q=100%25", headers=headers).json["items"]] == []

    fake.expire_history()
    fake.messages.pop(kept["id"])  # gone without a trace in the (expired) history
    job = sync(client, headers, "mail.sync")
    assert job["result"]["mode"] == "full" and job["result"]["resync_reason"] == "history_id_expired"
    assert job["result"]["deleted"] == 1
    after = client.get("/v1/mail/messages", headers=headers).json["items"]
    assert [(m["id"], m["subject"]) for m in after] == [(m["id"], m["subject"]) for m in items if m["subject"] == "fresh"]


def test_mail_pages_through_the_listing(client, headers, fake):
    for i in range(105):  # the page size is 100
        fake.add_message(f"m{i}")
    connect(client, headers, fake)
    result = wait_initial_syncs(client, headers)["mail.sync"]["result"]
    assert result["pages"] == 2 and result["inserted"] == 105
    first = client.get("/v1/mail/messages?limit=100", headers=headers).json
    second = client.get(f"/v1/mail/messages?limit=100&cursor={first['next_cursor']}", headers=headers).json
    assert len(first["items"]) + len(second["items"]) == 105 and second["next_cursor"] is None


def test_another_users_mail_is_404(client, headers, other_headers, fake):
    fake.add_message("private")
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    message_id = client.get("/v1/mail/messages", headers=headers).json["items"][0]["id"]
    assert client.get(f"/v1/mail/messages/{message_id}", headers=headers).status_code == 200
    assert client.get(f"/v1/mail/messages/{message_id}", headers=other_headers).status_code == 404
    assert client.get("/v1/mail/messages", headers=other_headers).json["items"] == []


# -- coalescing and faults --------------------------------------------------------------


def test_a_sync_submitted_while_one_is_active_coalesces_into_it(client, headers, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    fake.slow("GET", r"/events$", 3)  # holds the next sync at Google for 3 s
    first = client.post("/v1/jobs", json={"type": "calendar.sync", "params": {}}, headers=headers)
    assert first.status_code == 202
    wait_until(lambda: load_job(first.json["id"]).status == "running", message="the sync to start")

    second = client.post("/v1/jobs", json={"type": "calendar.sync", "params": {"full": True}}, headers=headers)

    assert second.status_code == 200 and second.json["id"] == first.json["id"]
    assert wait_for_job(client, first.json["id"], headers)["status"] == "succeeded"
    assert len(jobs_of(client, headers, "calendar.sync")) == 2  # the initial one and this one
    # Once it finished, a new submit queues a new sync.
    assert sync(client, headers, "calendar.sync")["status"] == "succeeded"


def test_two_syncs_of_one_account_never_run_at_once(client, headers, user, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    with fake.lock:  # the initial calendar and mail syncs may have overlapped: not what is measured
        fake.max_in_flight = fake.in_flight
    fake.slow("GET", r"/events$", 2, times=2)
    # Two jobs past the coalescing (as a redelivered message and a new one could be).
    job_ids = [make_job(user, type="calendar.sync", params={}).id for _ in range(2)]
    with db.session_scope() as session:
        for job_id in job_ids:
            send_job(session, job_id, load_job(job_id).run_token)

    jobs = [wait_for_job(client, str(job_id), headers, timeout=60) for job_id in job_ids]

    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"]
    assert fake.max_in_flight == 1
    assert sorted(job["attempts"] for job in jobs) == [1, 2]  # the second waited for the first


def test_a_canceled_sync_writes_nothing_and_frees_the_account(client, headers, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    fake.add_event("late", at(1), at(1, 1))
    fake.slow("GET", r"/events$", 3)
    job_id = client.post("/v1/jobs", json={"type": "calendar.sync", "params": {}}, headers=headers).json["id"]
    wait_until(lambda: load_job(job_id).status == "running", message="the sync to start")

    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=headers).json["status"] == "canceled"

    wait_until(lambda: fake.in_flight == 0, message="the slow request to end")
    assert client.get("/v1/calendar/events", headers=headers).json["items"] == []
    # The account is not left locked by the canceled job: the next sync runs at once.
    job = sync(client, headers, "calendar.sync")
    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert [e["summary"] for e in client.get("/v1/calendar/events", headers=headers).json["items"]] == ["late"]


def test_a_lock_left_by_a_dead_sync_is_taken_over(client, headers, user, fake):
    from shared.redis_clients import cache_redis

    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    # What a worker killed mid-sync leaves behind: the lock, held by a job that is not running.
    dead = make_job(user, type="calendar.sync", params={}, status="failed")
    cache_redis().set(f"google-sync:{user.id}:calendar", str(dead.id), ex=600)

    job = sync(client, headers, "calendar.sync")

    assert job["status"] == "succeeded" and job["attempts"] == 1
    assert cache_redis().get(f"google-sync:{user.id}:calendar") is None  # released after


def test_rate_limits_and_5xx_are_retried(client, headers, fake):
    fake.add_event("Standup", at(1), at(1, 1))
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    fake.add_event("Lunch", at(1, 3), at(1, 4))

    # Once each: the client's in-call retries absorb them.
    fake.fail("GET", r"/events$", 429)
    fake.fail("GET", r"/events$", 403, reason="userRateLimitExceeded")
    job = sync(client, headers, "calendar.sync")
    assert job["status"] == "succeeded" and job["attempts"] == 1

    # More than the in-call retries (2): the job itself is retried later, and then succeeds.
    fake.add_event("Dinner", at(1, 6), at(1, 7))
    fake.fail("GET", r"/events$", 503, times=3)
    job = sync(client, headers, "calendar.sync")
    assert job["status"] == "succeeded" and job["attempts"] == 2
    assert {e["summary"] for e in client.get("/v1/calendar/events", headers=headers).json["items"]} == {
        "Standup", "Lunch", "Dinner"}


def test_invalid_grant_needs_reconnection_and_stops_periodic_syncs(client, headers, user, fake, google_worker):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    fake.revoke_all()  # the user removed our access at Google

    job = sync(client, headers, "mail.sync")

    assert job["status"] == "failed" and job["error"]["code"] == "google_reauth_required"
    assert job["attempts"] == 1
    assert "1//" not in job["error"]["message"] and "1//" not in google_worker.log_path.read_text()
    row = integration_row(user)
    assert row.status == "reauth_required"
    assert client.get("/v1/integrations", headers=headers).json["items"][0]["status"] == "reauth_required"
    from scheduler.google_sync import fan_out

    with db.session_scope() as session:
        assert fan_out(session=session, settings=get_settings(), now=utcnow() + timedelta(days=1)) == {}


def test_periodic_fan_out_submits_due_syncs_once(client, headers, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    from scheduler.google_sync import fan_out

    with db.session_scope() as session:
        assert fan_out(session=session, settings=get_settings()) == {}  # just synced
        later = utcnow() + timedelta(minutes=get_settings().google_sync_interval_minutes + 1)
        assert fan_out(session=session, settings=get_settings(), now=later) == {"calendar.sync": 1, "mail.sync": 1}
        assert fan_out(session=session, settings=get_settings(), now=later) == {}  # coalesced into the queued ones


def test_a_refreshed_access_token_is_stored_encrypted(client, headers, user, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    before = integration_row(user).access_token_encrypted
    fake.expire_access_tokens()  # 401 -> google-auth refreshes with the refresh token

    assert sync(client, headers, "calendar.sync")["status"] == "succeeded"

    after = integration_row(user).access_token_encrypted
    assert after != before and crypto.decrypt(after) in fake.access_tokens


# -- writes -----------------------------------------------------------------------------


def submit_internal(user_id, type_name, params) -> str:
    with db.session_scope() as session:
        user = session.get(User, user_id)
        job = submit_job(session=session, user=user, type_name=type_name, params=params,
                         settings=get_settings(), internal=True).job
        session.commit()
        send_job(session, job.id, job.run_token)
        return str(job.id)


def test_create_event_runs_once_even_when_the_answer_is_lost(client, headers, user, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    action_id = str(uuid.uuid4())
    # Google makes the event, then the answer is lost (503), twice: more than the in-call
    # retries, so the job itself is retried too.
    fake.fail("POST", r"/events$", 503, times=3, after=True)

    job_id = submit_internal(user.id, "calendar.create_event",
                             {"summary": "Focus", "start": at(2), "end": at(2, 1), "action_id": action_id})
    job = wait_for_job(client, job_id, headers, timeout=60)

    assert job["status"] == "succeeded", job
    assert [e["summary"] for e in fake.events.values()] == ["Focus"]
    assert job["result"]["external_id"] == uuid.UUID(action_id).hex
    with db.session_scope() as session:
        assert session.scalar(select(CalendarEvent.summary).where(CalendarEvent.external_id == uuid.UUID(action_id).hex)) == "Focus"


def test_create_draft_runs_once_even_when_the_answer_is_lost(client, headers, user, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    action_id = str(uuid.uuid4())
    fake.fail("POST", r"/drafts$", 500, after=True)  # made, but the answer is lost

    job_id = submit_internal(user.id, "mail.create_draft",
                             {"to": ["bob@example.com"], "subject": "Re: lunch", "body": "Yes!", "action_id": action_id})
    job = wait_for_job(client, job_id, headers, timeout=60)

    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    assert len(fake.drafts) == 1 and job["result"]["draft_id"] in fake.drafts
    assert fake.count("POST", r"/drafts$") == 1
    # A third run (a redelivered message) finds the recorded draft and makes none.
    with db.session_scope() as session:
        assert session.scalar(select(GoogleWrite.external_id)) == job["result"]["draft_id"]


# -- keys -------------------------------------------------------------------------------


def test_key_rotation_keeps_every_secret_decryptable(client, headers, user, fake, monkeypatch):
    from click.testing import CliRunner

    from shared.cli import main

    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    start_link(client, headers, fake)  # a consent still waiting for its app
    old = integration_row(user)
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("ENCRYPTION_KEYS", f"{new_key},{KEY}")
    get_settings.cache_clear()

    result = CliRunner().invoke(main, ["keys", "rotate"])

    assert result.exit_code == 0, result.output
    assert "re-encrypted 4 secrets" in result.output
    rotated = integration_row(user)
    only_new = Fernet(new_key.encode())
    [link] = pending_links()
    assert only_new.decrypt(link.refresh_token_encrypted.encode()).decode() in fake.refresh_tokens
    assert only_new.decrypt(rotated.refresh_token_encrypted.encode()).decode() == crypto.decrypt(old.refresh_token_encrypted)
    assert rotated.refresh_token_encrypted != old.refresh_token_encrypted
    get_settings.cache_clear()  # monkeypatch restores the old keys after the test


def test_deleting_the_account_revokes_google_access(client, headers, user, fake):
    connect(client, headers, fake)
    wait_initial_syncs(client, headers)
    start_link(client, headers, fake)  # and a consent its app never completed
    # account.delete runs on `reports`: a worker that knows the fake takes that queue for this test.
    others = [name for reply in celery_app.control.ping(timeout=1.0) for name in reply]
    if others:
        celery_app.control.cancel_consumer("reports", destination=others, reply=True)
    reports_worker = WorkerProcess(queues="reports").start()
    try:
        submitted = client.post("/v1/jobs", json={"type": "account.delete", "params": {}}, headers=headers)
        assert submitted.status_code == 202, submitted.json
        wait_until(lambda: integration_row(user) is None, timeout=60, message="the account to be erased")
    finally:
        reports_worker.stop()
        if others:
            celery_app.control.add_consumer("reports", destination=others, reply=True)

    assert len(fake.refresh_tokens) == 2 and all(fake.refresh_tokens.values())  # both revoked at the fake
    assert client.get("/v1/me", headers=headers).status_code == 401
