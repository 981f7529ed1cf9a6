"""Who waits for whom: one user's flood and a bulk backlog must not delay other work.

Each test queues everything first, on a broker of its own, and only then starts a
single-slot worker, so the order in which jobs start is the order the broker serves them.
"""
from __future__ import annotations

import pytest

from bench.servers import ThrowawayRedis
from shared.celery_app import app as celery_app
from shared.celery_app import configure
from tests.factories import load_job
from tests.support import WorkerProcess, auth_headers, create_user, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def own_broker(settings):
    """Point this process's Celery app, and the workers the test starts, at a fresh Redis."""
    server = ThrowawayRedis().start()
    configure(celery_app, settings.replace(broker_url=server.url))
    yield server.url
    configure(celery_app, settings)
    server.destroy()


def submit(client, headers, type_name, params) -> str:
    response = client.post("/v1/jobs", json={"type": type_name, "params": params}, headers=headers)
    assert response.status_code == 202, response.json
    return response.json["id"]


def run_all(broker_url: str, job_ids: list[str], queues: str = "interactive") -> list[str]:
    """Start a one-slot worker, wait for every job, return the ids in the order they started."""
    worker = WorkerProcess(env={"BROKER_URL": broker_url}, queues=queues, concurrency=1).start()
    try:
        wait_until(lambda: all(load_job(j).status == "succeeded" for j in job_ids), timeout=120,
                   message="the jobs to finish")
    finally:
        worker.stop()
    return sorted(job_ids, key=lambda j: load_job(j).started_at)


def test_a_flooding_user_does_not_hold_up_another(client, own_broker):
    flooder, other = create_user("flooder@example.com"), create_user("patient@example.com")
    floods = [submit(client, auth_headers(flooder), "tasks.quick_add", {"text": f"flood {n}"}) for n in range(12)]
    mine = submit(client, auth_headers(other), "tasks.quick_add", {"text": "my one task"})

    order = run_all(own_broker, [*floods, mine])

    # Only the flooder's first few jobs (sent at top priority) may start before it.
    assert order.index(mine) <= 3, order.index(mine)


def test_interactive_jobs_go_before_a_bulk_backlog(client, admin_headers, own_broker):
    backlog = [submit(client, admin_headers, "ops.ping", {}) for _ in range(15)]
    user = create_user("interactive@example.com")
    interactive = [submit(client, auth_headers(user), "tasks.quick_add", {"text": f"task {n}"}) for n in range(4)]

    order = run_all(own_broker, [*backlog, *interactive], queues="interactive,sync,reports,maintenance")

    # At most the one bulk message the worker fetched first comes before them (round
    # robin between queues would interleave them: i, b, i, b, ...).
    assert max(order.index(j) for j in interactive) <= 4, [order.index(j) for j in interactive]
