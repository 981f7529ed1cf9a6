"""The status page's states: queue waits, worker heartbeats, outside services' failure rates, incidents."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from shared import heartbeats, status
from shared.cli import main
from shared.jobtypes import QUEUES
from shared.models import utcnow
from shared.redis_clients import cache_redis
from tests.factories import make_job


@pytest.fixture(autouse=True)
def _fresh_page():
    client = cache_redis()
    status.forget_cached(client)
    for key in client.scan_iter(match="status:calls:*"):
        client.delete(key)
    for key in client.scan_iter(match=heartbeats.PREFIX + "*"):
        client.delete(key)
    yield
    status.forget_cached(client)


def states(client) -> dict:
    response = client.get("/v1/status")
    assert response.status_code == 200
    return {c["name"]: c["status"] for c in response.json["components"]}


def a_worker_on_every_queue():
    heartbeats.write(hostname="status-test@host", queues=list(QUEUES), concurrency=1, started_at=0, interval=30)


def test_without_sign_in_every_component_answers_and_only_states_are_public(client):
    a_worker_on_every_queue()
    response = client.get("/v1/status")
    assert response.status_code == 200
    assert {c["name"] for c in response.json["components"]} == set(status.COMPONENTS)
    assert set(states(client).values()) == {"operational"}
    body = json.dumps(response.json)
    assert "status-test@host" not in body and "depth" not in body and "rate" not in body


def test_an_old_queued_job_degrades_its_queue_only(client, user, settings):
    a_worker_on_every_queue()
    old = utcnow() - timedelta(seconds=settings.status_queue_wait_degraded_seconds + 30)
    make_job(user, type="tasks.quick_add", created_at=old, enqueued_at=old)  # interactive

    found = states(client)

    assert found["jobs.interactive"] == "degraded" and found["jobs.sync"] == "operational"
    assert found["ai"] == "degraded"  # runs on the interactive queue


def test_no_worker_heartbeat_degrades_job_processing(client):
    assert states(client)["jobs.interactive"] == "degraded"


def test_the_page_is_computed_at_most_every_15_seconds(client, user, settings):
    a_worker_on_every_queue()
    assert states(client)["jobs.interactive"] == "operational"
    old = utcnow() - timedelta(seconds=settings.status_queue_wait_degraded_seconds + 30)
    make_job(user, created_at=old, enqueued_at=old)
    assert states(client)["jobs.interactive"] == "operational"  # the cached page
    assert 0 < cache_redis().ttl(status.CACHE_KEY) <= status.CACHE_SECONDS


def test_failing_calls_counted_by_workers_degrade_then_down_a_service(client):
    a_worker_on_every_queue()
    for ok in (True, True, False, False, False):
        status.count_call("google", ok=ok)
    assert states(client)["google"] == "degraded"
    status.forget_cached(cache_redis())
    for key in cache_redis().scan_iter(match="status:calls:google:ok:*"):
        cache_redis().delete(key)
    status.count_call("google", ok=False)
    status.count_call("google", ok=False)
    assert states(client)["google"] == "down"  # five calls, all failed


def test_incidents_from_the_cli_open_update_and_resolve(client):
    runner = CliRunner()
    opened = runner.invoke(main, ["status", "incident", "open", "Delayed reminders", "--component", "notifications",
                                  "--severity", "minor"])
    assert opened.exit_code == 0, opened.output
    incident_id = opened.output.strip()
    [shown] = client.get("/v1/status").json["incidents"]
    assert shown["title"] == "Delayed reminders" and shown["component"] == "notifications"

    assert runner.invoke(main, ["status", "incident", "update", incident_id, "Pushes are catching up"]).exit_code == 0
    assert runner.invoke(main, ["status", "incident", "resolve", incident_id]).exit_code == 0
    page = client.get("/v1/status").json
    assert page["incidents"] == [] and [i["id"] for i in page["past_incidents"]] == [incident_id]
    assert [u["state"] for u in page["past_incidents"][0]["updates"]] == ["open", "open", "resolved"]

    bad = runner.invoke(main, ["status", "incident", "open", "x", "--component", "nope"])
    assert bad.exit_code == 2 and "--component" in bad.output


def test_beat_keeps_each_days_worst_state(client):
    from shared import db

    with db.session_scope() as session:
        status.sample(session, {"components": [{"name": "api", "status": "degraded"}]})
    with db.session_scope() as session:
        status.sample(session, {"components": [{"name": "api", "status": "operational"}]})
    history = client.get("/v1/status").json["history"]["api"]
    assert history[-1] == {"day": utcnow().date().isoformat(), "status": "degraded"}


def test_the_html_page_needs_no_sign_in(client):
    response = client.get("/status")
    assert response.status_code == 200 and "Service status" in response.get_data(as_text=True)
    assert "script-src" not in response.headers["Content-Security-Policy"]
