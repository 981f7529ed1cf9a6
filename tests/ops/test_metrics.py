"""Prometheus exposition: the api's /metrics across gunicorn workers, the worker's port,
queue depths from the broker."""
from __future__ import annotations

import re
import uuid

import pytest
import redis
import requests

from bench.servers import ThrowawayRedis
from shared import metrics
from shared.jobtypes import QUEUES
from tests.support import ServerProcess, wait_for_job, wait_until

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.M)


def samples(text: str) -> list[tuple[str, str, float]]:
    return [(name, labels or "", float(value)) for name, labels, value in SAMPLE.findall(text)]


def value_of(text: str, name: str, **labels) -> float | None:
    for sample_name, sample_labels, value in samples(text):
        if sample_name == name and all(f'{k}="{v}"' in sample_labels for k, v in labels.items()):
            return value
    return None


def test_request_metrics_are_labelled_by_route_not_path(client, headers):
    for _ in range(2):
        client.get(f"/v1/jobs/{uuid.uuid4()}", headers=headers)
    client.get(f"/random/{uuid.uuid4()}")
    text = client.get("/metrics").get_data(as_text=True)
    assert value_of(text, "http_requests_total", endpoint="/v1/jobs/<uuid:job_id>", status="404") >= 2
    assert value_of(text, "http_requests_total", endpoint="<unmatched>", status="404") >= 1
    assert "/random/" not in text


def test_the_api_counts_every_gunicorn_workers_requests():
    server = ServerProcess(env={"WEB_CONCURRENCY": "2"}).start()
    try:
        def health_count():
            text = requests.get(f"{server.url}/metrics", timeout=5).text
            return value_of(text, "http_requests_total", method="GET", endpoint="/health", status="200")

        before = health_count()  # the readiness polls of ServerProcess.start
        for _ in range(30):
            # A new connection each time, so both workers answer some of them.
            assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        counts = {health_count() for _ in range(6)}
    finally:
        server.stop()
    # Whichever worker answers the scrape, it reports both workers' requests.
    assert before >= 1 and counts == {before + 30}


def test_queue_depths_are_read_from_the_broker():
    server = ThrowawayRedis().start()  # a broker of its own: no worker takes these messages
    try:
        client = redis.Redis.from_url(server.url)
        client.rpush("reports", "a", "b", "c")
        client.rpush("reports\x06\x163", "d", "e")  # a priority step of the same queue
        client.rpush("sync", "f")
        depths = metrics.sample_queue_depths(server.url)
    finally:
        server.destroy()
    assert depths == {"interactive": 0, "sync": 1, "reports": 5, "maintenance": 0}
    assert metrics.QUEUE_DEPTH.labels("reports")._value.get() == 5


def test_an_unreachable_broker_leaves_the_depths_unsampled():
    assert metrics.sample_queue_depths("redis://127.0.0.1:1/0") is None


def test_metrics_page_has_every_queue(client):
    text = client.get("/metrics").get_data(as_text=True)
    for queue in QUEUES:
        assert value_of(text, "queue_depth", queue=queue) is not None


@pytest.mark.worker
def test_the_worker_serves_its_pool_processes_metrics(worker, client, user, headers, admin, admin_headers):
    def submit(job_type, params, who):
        response = client.post("/v1/jobs", json={"type": job_type, "params": params}, headers=who)
        assert response.status_code == 202, response.json
        return response.json["id"]

    done = submit("tasks.quick_add", {"text": "call mom"}, headers)
    failed = submit("ops.ping", {"fail": "always"}, admin_headers)
    retried = submit("ops.ping", {"fail": "first_attempt"}, admin_headers)
    assert wait_for_job(client, done, headers)["status"] == "succeeded"
    assert wait_for_job(client, failed, admin_headers)["status"] == "failed"
    assert wait_for_job(client, retried, admin_headers, timeout=60)["status"] == "succeeded"

    url = f"http://127.0.0.1:{worker.metrics_port}/metrics"

    def scraped():
        text = requests.get(url, timeout=5).text
        ok = value_of(text, "jobs_finished_total", type="tasks.quick_add", status="succeeded") or 0
        return ok >= 1 and text

    text = wait_until(scraped, timeout=15, message="the worker's metrics")
    assert value_of(text, "jobs_finished_total", type="ops.ping", status="failed") >= 1
    assert value_of(text, "job_retries_total", type="ops.ping") >= 1
    assert value_of(text, "jobs_started_total", type="tasks.quick_add") >= 1
    assert value_of(text, "job_run_seconds_count", type="tasks.quick_add") >= 1
    assert value_of(text, "job_queue_wait_seconds_count", queue="interactive") >= 1
    assert value_of(text, "queue_depth", queue="interactive") is not None


@pytest.mark.worker
def test_a_periodic_task_run_moves_the_scheduler_tick(worker):
    import time

    from shared.celery_app import app as celery_app

    url = f"http://127.0.0.1:{worker.metrics_port}/metrics"
    # Made at start (at 0, "never"), so the alert sees a stopped beat even before any tick.
    assert value_of(requests.get(url, timeout=5).text, "scheduler_last_tick_timestamp_seconds",
                    task="scheduler.sweep") is not None
    started = time.time()
    celery_app.send_task("scheduler.sweep", queue="maintenance")

    def ticked():
        text = requests.get(url, timeout=5).text
        return (value_of(text, "scheduler_last_tick_timestamp_seconds", task="scheduler.sweep") or 0) >= started - 1

    wait_until(ticked, timeout=20, message="scheduler_last_tick_timestamp_seconds to move")


def test_pool_gauges_follow_connections_in_use_and_beyond_the_pool(client, settings):
    from shared import db

    database = db.get_engine().url.database

    def gauges():
        text = client.get("/metrics").get_data(as_text=True)
        return (value_of(text, "db_pool_connections_in_use", database=database),
                value_of(text, "db_pool_overflow_connections", database=database),
                value_of(text, "db_pool_size", database=database))

    idle_in_use, _, size = gauges()
    held = [db.get_engine().connect() for _ in range(settings.db_pool_size + 2)]
    try:
        in_use, overflow, _ = gauges()
    finally:
        for connection in held:
            connection.close()
    assert size == settings.db_pool_size
    assert in_use == idle_in_use + settings.db_pool_size + 2
    assert overflow >= 2
    assert gauges()[:2] == (idle_in_use, max(0, idle_in_use - settings.db_pool_size))


def test_backup_gauges_say_when_the_last_backup_and_verification_were(client, settings):
    from datetime import timedelta

    from shared import db
    from shared.models import Backup, utcnow

    def gauge(name):
        return value_of(client.get("/metrics").get_data(as_text=True), name)

    assert gauge("backup_last_success_timestamp_seconds") == 0  # never: the alert fires
    made = utcnow() - timedelta(hours=3)
    with db.session_scope() as session:
        session.add(Backup(filename="a.dump", format="pg_custom", size=1, sha256="0" * 64, tables={},
                           created_at=made, verified_at=made + timedelta(hours=1), verify_status="ok"))
    assert gauge("backup_last_success_timestamp_seconds") == pytest.approx(made.timestamp())
    assert gauge("backup_last_verified_timestamp_seconds") == pytest.approx((made + timedelta(hours=1)).timestamp())
    assert gauge("backup_last_verification_failed") == 0

    with db.session_scope() as session:
        session.add(Backup(filename="b.dump", format="pg_custom", size=1, sha256="0" * 64, tables={},
                           created_at=made + timedelta(hours=2), verified_at=utcnow(), verify_status="failed"))
    assert gauge("backup_last_verification_failed") == 1
    assert gauge("backup_last_verified_timestamp_seconds") == pytest.approx((made + timedelta(hours=1)).timestamp())


def test_active_users_counts_distinct_users_of_the_last_15_minutes(client, user, other_user, headers, other_headers):
    import time

    from api.observability import ACTIVE_USERS_KEY, _noted
    from shared import redis_clients

    redis_clients.cache_redis().delete(ACTIVE_USERS_KEY)
    _noted.clear()
    for _ in range(3):
        client.get("/v1/me", headers=headers)
    client.get("/v1/me", headers=other_headers)
    client.get("/health")  # anonymous: not a user
    text = client.get("/metrics").get_data(as_text=True)
    assert value_of(text, "active_users", window="15m") == 2

    # Someone last seen 16 minutes ago no longer counts.
    redis_clients.cache_redis().zadd(ACTIVE_USERS_KEY, {str(user.id): time.time() - 16 * 60})
    text = client.get("/metrics").get_data(as_text=True)
    assert value_of(text, "active_users", window="15m") == 1
