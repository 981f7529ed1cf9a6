"""GET /v1/jobs/{id}/events: live agent output over SSE, resumable, through the events process
(gunicorn -k gevent) and through nginx with TLS; tickets; bad input; the held-connection caps."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
import urllib3

from shared.jobs import events as job_events
from shared.models import Job
from shared.redis_clients import cache_redis
from tests.factories import make_job
from tests.fakes.openai_server import FakeOpenAI
from tests.support import (
    EventsProcess,
    ServerProcess,
    WorkerProcess,
    auth_headers,
    create_user,
    free_port,
    sse_events,
    wait_until,
)

ANSWER = "The quick brown fox jumps over the lazy dog, twice: the quick brown fox jumps again. Done!"
AI_ENV = {"OPENAI_API_KEY": "sk-test-not-secret", "OPENAI_MODEL": "fake-model", "AI_TIMEOUT_SECONDS": "5",
          "AI_MAX_RETRIES": "0", "RATE_LIMIT_ENABLED": "false"}


# -- SSE reading -------------------------------------------------------------------------------


def stream(base: str, job_id: str, headers: dict, *, last_event_id: str | None = None, stop_after=None,
           verify=True) -> tuple[list[tuple[str, str, dict]], list[float]]:
    """The events of one connection, and when each arrived."""
    extra = {"Last-Event-ID": last_event_id} if last_event_id else {}
    got, times = [], []
    with requests.get(f"{base}/v1/jobs/{job_id}/events", headers={**headers, **extra}, stream=True, timeout=30,
                      verify=verify) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers.get("X-Accel-Buffering") == "no" or verify is False
        for event in sse_events(response, stop_after=stop_after):
            got.append(event)
            times.append(time.monotonic())
    return got, times


# -- processes ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI().start()
    server.chunk_seconds = 0.02
    server.chunk_chars = 4
    yield server
    server.stop()


@pytest.fixture(scope="module")
def live(fake, worker):
    """An AI worker alone on the interactive queue, the web process and the events process."""
    env = {**AI_ENV, "OPENAI_BASE_URL": fake.url}
    with worker.paused():
        ai_worker = WorkerProcess(env=env, queues="interactive").start()
        web = ServerProcess(env).start()
        events = EventsProcess(env).start()
        try:
            yield web, events
        finally:
            events.stop()
            web.stop()
            ai_worker.stop()


def submit(base: str, headers: dict, message: str = "say something", **kwargs) -> str:
    response = requests.post(f"{base}/v1/jobs", json={"type": "agent.assistant", "params": {"message": message}},
                             headers=headers, timeout=10, **kwargs)
    assert response.status_code == 202, response.text
    return response.json()["id"]


@pytest.mark.worker
def test_an_answer_streams_as_tokens_and_a_reconnect_gets_the_rest_exactly_once(live, fake):
    web, events = live
    headers = auth_headers(create_user(f"stream-{uuid.uuid4().hex[:8]}@example.com"))
    fake.script(fake.reply(ANSWER, prompt_tokens=50, completion_tokens=25))
    job_id = submit(web.url, headers)

    # Cut the connection after two token events, then resume from the last id seen.
    first, _ = stream(events.url, job_id, headers, stop_after=2)
    assert [kind for _, kind, _ in first].count("token") == 2
    rest, _ = stream(events.url, job_id, headers, last_event_id=first[-1][0])
    tokens = [data["text"] for _, kind, data in first + rest if kind == "token"]
    assert "".join(tokens) == ANSWER  # no gap, no duplicate
    assert len(tokens) >= 4, tokens  # as it was written, not in one piece at the end
    assert rest[-1][1] == "done" and rest[-1][2]["status"] == "succeeded"
    ids = [event_id for event_id, _, _ in first + rest]
    assert len(ids) == len(set(ids)) and all(ids)
    # One run's requests: the reconnect made no second model call.
    assert len(fake.requests) == 1
    assert fake.requests[0]["stream"] is True and fake.requests[0]["stream_options"] == {"include_usage": True}

    # A finished job's stream replays and closes; the usage came from the stream.
    replay, _ = stream(events.url, job_id, headers)
    assert "".join(d["text"] for _, k, d in replay if k == "token") == ANSWER
    job = requests.get(f"{web.url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()
    assert job["result"]["reply"] == ANSWER and job["result"]["usage"]["completion_tokens"] == 25
    assert "estimated" not in job["result"]["usage"]


@pytest.mark.worker
def test_tool_steps_and_proposals_arrive_as_they_happen(live, fake):
    web, events = live
    headers = auth_headers(create_user(f"tools-{uuid.uuid4().hex[:8]}@example.com"))
    fake.script(
        fake.tool_call("propose_event", {"summary": "Dentist", "start": "2030-01-02T09:00:00",
                                         "end": "2030-01-02T10:00:00"}),
        fake.reply("Proposed the dentist."),
    )
    job_id = submit(web.url, headers, "book the dentist")
    got, _ = stream(events.url, job_id, headers)
    kinds = [kind for _, kind, _ in got]
    assert kinds.index("tool") < kinds.index("action") < kinds.index("token") < kinds.index("done")
    action = next(data for _, kind, data in got if kind == "action")
    assert action["type"] == "calendar.create_event" and uuid.UUID(action["action_id"])
    assert {d["phase"] for _, k, d in got if k == "tool"} == {"started", "finished"}


@pytest.mark.worker
def test_a_server_without_usage_in_streams_is_asked_once_more_and_usage_is_estimated(live, fake):
    web, events = live
    headers = auth_headers(create_user(f"nousage-{uuid.uuid4().hex[:8]}@example.com"))
    fake.script(fake.reply(ANSWER))
    fake.reject_stream_options = True
    try:
        job_id = submit(web.url, headers)
        got, _ = stream(events.url, job_id, headers)
    finally:
        fake.reject_stream_options = False
    assert got[-1][2]["status"] == "succeeded"
    assert [("stream_options" in r) for r in fake.requests] == [True, False]
    usage = requests.get(f"{web.url}/v1/jobs/{job_id}", headers=headers, timeout=10).json()["result"]["usage"]
    assert usage["estimated"] is True and usage["completion_tokens"] == (len(ANSWER) + 3) // 4


@pytest.mark.worker
def test_other_jobs_stream_progress_and_done_from_their_row(live):
    web, events = live
    headers = auth_headers(create_user(f"rows-{uuid.uuid4().hex[:8]}@example.com"))
    response = requests.post(f"{web.url}/v1/jobs", json={"type": "report.daily_digest", "params": {}},
                             headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    # No worker serves the reports queue here: it stays queued until we cancel it.
    got = []

    def read():
        with requests.get(f"{events.url}/v1/jobs/{job_id}/events", headers=headers, stream=True, timeout=30) as r:
            for event in sse_events(r):
                got.append(event)

    reader = threading.Thread(target=read)
    reader.start()
    wait_until(lambda: got, message="the first progress event")
    assert got[0][1] == "progress" and got[0][2]["status"] == "queued"
    assert requests.post(f"{web.url}/v1/jobs/{job_id}/cancel", headers=headers, timeout=10).status_code == 200
    reader.join(timeout=15)
    assert got[-1][1] == "done" and got[-1][2]["status"] == "canceled"
    assert not cache_redis().exists(job_events.stream_key(job_id))  # no stream writes for this type


@pytest.mark.worker
def test_through_nginx_with_tls(live, fake, tmp_path):
    from tests.ops.test_nginx import NginxProcess, config_copy, need

    need("nginx")
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    web, events = live
    https_port = free_port()
    conf = config_copy(tmp_path, api=f"127.0.0.1:{web.port}", events=f"127.0.0.1:{events.port}",
                       http_port=free_port(), https_port=https_port)
    nginx = NginxProcess(conf, https_port).start()
    base = f"https://127.0.0.1:{https_port}"
    try:
        headers = auth_headers(create_user(f"nginx-{uuid.uuid4().hex[:8]}@example.com"))
        fake.script(fake.reply(ANSWER))
        job_id = submit(base, headers, verify=False)
        got, times = stream(base, job_id, headers, verify=False)
        tokens = [i for i, (_, kind, _) in enumerate(got) if kind == "token"]
        assert len(tokens) >= 4 and got[-1][1] == "done"
        # Unbuffered: the first token arrived well before the last (the fake writes for ~0.5 s).
        assert times[tokens[-1]] - times[tokens[0]] > 0.2
        assert "".join(got[i][2]["text"] for i in tokens) == ANSWER
        # nginx writes the stream's line when the upstream closes, a moment after `done` was read.
        wait_until(lambda: f"/v1/jobs/{job_id}/events" in (tmp_path / "access.log").read_text(),
                   message="the stream's access log line", timeout=10)
    finally:
        nginx.stop()


# -- in-process: tickets and bad input -----------------------------------------------------------


def finished_agent_job(user) -> Job:
    job = make_job(user, type="agent.assistant", params={"message": "hi"}, status="succeeded")
    return job


def test_bad_last_event_ids_are_400_never_500(client, user, headers):
    job = make_job(user, type="agent.assistant", params={"message": "hi"}, status="queued")
    for bad in ("garbage", "1-2-3", "99999999999999-0", "p12", "\x00", "-1-0"):
        response = client.get(f"/v1/jobs/{job.id}/events", headers={**headers, "Last-Event-ID": bad})
        assert response.status_code == 400, (bad, response.status_code)
        assert response.json["code"] in ("invalid_last_event_id", "invalid_characters")
    response = client.get(f"/v1/jobs/{job.id}/events?last_event_id=nope", headers=headers)
    assert response.status_code == 400


def test_another_users_job_is_404_and_no_token_is_401(client, user, headers, other_headers):
    job = make_job(user, type="agent.assistant", params={"message": "hi"})
    assert client.get(f"/v1/jobs/{job.id}/events", headers=other_headers).status_code == 404
    assert client.post(f"/v1/jobs/{job.id}/events/ticket", headers=other_headers).status_code == 404
    assert client.get(f"/v1/jobs/{job.id}/events").status_code == 401
    assert client.get(f"/v1/jobs/{uuid.uuid4()}/events", headers=headers).status_code == 404


def test_a_ticket_is_single_use_bound_to_its_job_and_stored_hashed(client, user, headers):
    job = make_job(user, type="tasks.quick_add", status="succeeded")
    other_job = make_job(user, type="tasks.quick_add", status="succeeded")
    minted = client.post(f"/v1/jobs/{job.id}/events/ticket", headers=headers)
    assert minted.status_code == 201 and minted.json["expires_in"] == 60
    ticket = minted.json["ticket"]
    assert cache_redis().get(f"evticket:{ticket}") is None  # only its hash is a key
    assert 0 < cache_redis().ttl(f"evticket:{__import__('hashlib').sha256(ticket.encode()).hexdigest()}") <= 60

    assert client.get(f"/v1/jobs/{other_job.id}/events?ticket={ticket}").status_code == 401  # (and it is spent)
    ticket = client.post(f"/v1/jobs/{job.id}/events/ticket", headers=headers).json["ticket"]
    first = client.get(f"/v1/jobs/{job.id}/events?ticket={ticket}")
    assert first.status_code == 200
    assert b"event: done" in first.data and b'"status":"succeeded"' in first.data
    again = client.get(f"/v1/jobs/{job.id}/events?ticket={ticket}")
    assert again.status_code == 401 and again.json["code"] == "invalid_ticket"
    assert client.get(f"/v1/jobs/{job.id}/events?ticket=never-issued").status_code == 401


def test_a_finished_live_job_whose_stream_expired_answers_its_final_state(client, user, headers):
    job = make_job(user, type="agent.assistant", params={"message": "hi"}, status="failed")
    response = client.get(f"/v1/jobs/{job.id}/events", headers=headers)
    assert response.status_code == 200
    events = [block for block in response.data.decode().split("\n\n") if block.startswith("id:")]
    assert len(events) == 1 and "event: done" in events[0] and '"status":"failed"' in events[0]


def test_an_id_older_than_the_stream_gets_a_snapshot_then_the_rest(client, user, headers):
    job = make_job(user, type="agent.assistant", params={"message": "hi"}, status="running")
    writer = job_events.EventWriter(job.id)
    writer.emit("token", {"text": "old "})
    writer.emit("attempt", {"attempt": 2})
    writer.emit("token", {"text": "Hello "})
    writer.emit("token", {"text": "world"})
    writer.emit("done", {"status": "succeeded"})
    key = job_events.stream_key(job.id)
    redis_client = cache_redis()
    ids = [entry_id.decode() for entry_id, _ in redis_client.xrange(key)]
    redis_client.xdel(key, ids[0], ids[1])  # as if trimmed
    ms, seq = job_events.parse_id(ids[0])
    response = client.get(f"/v1/jobs/{job.id}/events", headers={**headers, "Last-Event-ID": f"{ms - 1}-{seq}"})
    blocks = [b for b in response.data.decode().split("\n\n") if b.startswith("id:")]
    assert "event: snapshot" in blocks[0] and '"text":"Hello world"' in blocks[0]
    assert len(blocks) == 2 and "event: done" in blocks[1]


# -- held connections (issue 21 item 3) -----------------------------------------------------------


@pytest.fixture(scope="module")
def web_without_worker():
    """The threaded web process (2 x 16 threads, so 12 held connections each), no worker behind it."""
    server = ServerProcess({"RATE_LIMIT_ENABLED": "false"}).start()
    yield server
    server.stop()


def test_held_polls_past_the_process_cap_come_back_at_once_and_me_still_answers(web_without_worker):
    base = web_without_worker.url
    accounts = []
    if True:  # (the jobs have no message: nothing finishes them while they are polled)
        for n in range(10):
            user = create_user(f"held-{n}-{uuid.uuid4().hex[:6]}@example.com")
            accounts.append((auth_headers(user), [str(make_job(user).id) for _ in range(4)]))
        results = []
        lock = threading.Lock()

        def poll(headers, job_id):
            started = time.monotonic()
            response = requests.get(f"{base}/v1/jobs/{job_id}?wait=20", headers=headers, timeout=40)
            with lock:
                results.append((time.monotonic() - started, response.status_code, response.headers.get("Retry-After")))

        threads = [threading.Thread(target=poll, args=(headers, job_id)) for headers, jobs in accounts for job_id in jobs]
        for thread in threads:
            thread.start()
        # The polls within the caps are held (2 processes x 12); the rest came back already.
        wait_until(lambda: len(results) >= 40 - 24, timeout=15, message="the polls over the cap to come back")
        me = requests.get(f"{base}/v1/me", headers=accounts[0][0], timeout=10)
        assert me.status_code == 200
        early = list(results)
        for thread in threads:
            thread.join(timeout=30)
    assert len(early) >= 16
    assert all(status == 200 and retry_after and int(retry_after) >= 1 for _, status, retry_after in early)
    held = [r for r in results if r[2] is None]
    assert len(held) >= 1 and all(elapsed >= 15 for elapsed, _, _ in held)


def test_the_web_process_refuses_a_held_cap_at_or_above_its_threads():
    server = ServerProcess({"GUNICORN_THREADS": "8", "MAX_HELD_CONNECTIONS": "8"})
    with pytest.raises(AssertionError, match="MAX_HELD_CONNECTIONS=8 must be below"):
        server.start(timeout=20)


def test_streams_past_the_users_cap_get_429_with_retry_after(client, user, headers, settings):

    from api import create_app

    app = create_app(settings.replace(max_streams_per_user=1))
    app.config["TESTING"] = True
    c = app.test_client()
    job = make_job(user, type="tasks.quick_add", status="running")
    first = c.get(f"/v1/jobs/{job.id}/events", headers=headers)  # held open: not read to the end
    try:
        second = c.get(f"/v1/jobs/{job.id}/events", headers=headers)
        assert second.status_code == 429 and second.json["code"] == "too_many_streams"
        assert int(second.headers["Retry-After"]) >= 1
    finally:
        first.close()
    third = c.get(f"/v1/jobs/{job.id}/events", headers=headers)
    assert third.status_code == 200
    third.close()
