"""One user's long-polls are capped across api processes (MAX_LONG_POLLS_PER_USER), so they
cannot hold every thread; past the cap a poll answers at once, as wait=0 would."""
from __future__ import annotations

import threading
import time

import pytest
import requests
from sqlalchemy import update

from api.limits import long_poll_key
from shared import db
from shared.jobs import status_cache
from shared.models import Job
from shared.redis_clients import cache_redis
from tests.factories import make_job
from tests.support import ServerProcess, auth_headers, wait_until

WAIT = 20  # seconds a poll that gets a slot holds its thread


@pytest.fixture(scope="module")
def two_apis():
    """Two gunicorn masters (two workers each): the cap must hold across all their processes."""
    servers = [ServerProcess({"MAX_LONG_POLLS_PER_USER": "2"}) for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def poll(url: str, headers: dict, job_id, wait: float, etag: str | None = None) -> tuple[requests.Response, float]:
    started = time.monotonic()
    extra = {"If-None-Match": etag} if etag else {}
    response = requests.get(f"{url}/v1/jobs/{job_id}", params={"wait": wait}, headers={**headers, **extra},
                            timeout=WAIT + 30)
    return response, time.monotonic() - started


def test_past_the_cap_a_poll_answers_at_once_and_others_are_not_held_back(two_apis, user, other_user):
    first, second = two_apis
    mine, theirs = auth_headers(user), auth_headers(other_user)
    job = make_job(user)  # queued, and never sent: nothing will change it unless the test does
    other_job = make_job(other_user)
    etag = requests.get(f"{first.url}/v1/jobs/{job.id}", headers=mine, timeout=10).headers["ETag"]

    held = []
    holding = [threading.Thread(target=lambda: held.append(poll(first.url, mine, job.id, WAIT, etag)))
               for _ in range(2)]
    for thread in holding:
        thread.start()
    wait_until(lambda: cache_redis().zcard(long_poll_key(user.id)) == 2, timeout=20,
               message="two polls in flight")

    # A third, through another api process: at once, as wait=0 would answer.
    unchanged, took = poll(second.url, mine, job.id, WAIT, etag)
    assert unchanged.status_code == 304 and took < WAIT / 2
    plain, took = poll(second.url, mine, job.id, WAIT)
    assert plain.status_code == 200 and plain.json()["status"] == "queued" and took < WAIT / 2
    # Another user's poll is not held back: it waits its full time.
    _, took = poll(second.url, theirs, other_job.id, 2)
    assert took >= 1.5

    # The job changes: the held polls answer, give their slots back, and the next poll waits again.
    with db.session_scope() as session:
        session.execute(update(Job).where(Job.id == job.id).values(progress=50, progress_message="halfway"))
        status_cache.track(session, [job.id])  # as every writer of a job does (its commit wakes the polls)
    for thread in holding:
        thread.join(timeout=WAIT + 30)
    assert [response.json()["progress"] for response, _ in held] == [50, 50]
    assert cache_redis().zcard(long_poll_key(user.id)) == 0
    _, took = poll(first.url, mine, job.id, 2)
    assert took >= 1.5
