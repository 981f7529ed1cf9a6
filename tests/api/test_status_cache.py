"""Job status served from Redis: never older than a committed change, never another user's, refilled on a miss."""
from __future__ import annotations

import threading
import time
import uuid

import requests
from sqlalchemy import event, select, update

from shared import db
from shared.jobs import job_etag, job_to_dict, status_cache
from shared.models import Job
from shared.redis_clients import cache_redis
from tests.factories import make_job
from tests.support import auth_headers


def test_pollers_never_see_an_etag_older_than_a_committed_change(live_server, user):
    """Writers commit changes of one job through the real protocol while pollers ask gunicorn,
    over HTTP, whether the ETag of an earlier state is still current: once a change has
    finished committing, no poll that starts afterwards may answer 304 to an older ETag, or
    a body older than that change."""
    headers = auth_headers(user)
    job = make_job(user, status="running")
    lock = threading.Lock()
    etags: dict[int, str] = {}  # version -> ETag, for every committed state
    versions_of: dict[str, int] = {}  # progress_message -> version
    latest = [0]
    with db.session_scope() as session:
        row = session.execute(select(Job.__table__).where(Job.id == job.id)).one()
        etags[row.version] = job_etag(job_to_dict(row))
        versions_of[str(row.progress_message)] = row.version
        latest[0] = row.version
    stop = time.monotonic() + 6
    violations: list[str] = []
    answered = {"304": 0, "200": 0}

    def write():
        while time.monotonic() < stop:
            marker = uuid.uuid4().hex
            with db.new_session() as session:
                session.execute(update(Job).where(Job.id == job.id).values(progress_message=marker))
                row = session.execute(select(Job.__table__).where(Job.id == job.id)).one()
                with lock:  # known before it commits, so a poll may see it before this writer returns
                    versions_of[marker] = row.version

                def committed(_session, row=row):
                    # The change is in PostgreSQL from here on: every poll that starts now must see it,
                    # even while this (deliberately slow) writer has yet to tell Redis.
                    with lock:
                        etags[row.version] = job_etag(job_to_dict(row))
                        latest[0] = max(latest[0], row.version)
                    time.sleep(0.02)

                event.listen(session, "after_commit", committed)
                status_cache.track(session, [job.id])
                session.commit()
            time.sleep(0.05)

    def poll():
        http = requests.Session()
        while time.monotonic() < stop:
            with lock:
                floor = latest[0]
                older = [v for v in etags if v < floor]
                asked = etags[max(older)] if older else etags[floor]
            response = http.get(f"{live_server.url}/v1/jobs/{job.id}", headers={**headers, "If-None-Match": asked},
                                timeout=10)
            if response.status_code == 304:
                answered["304"] += 1
                if older:
                    violations.append(f"304 for the ETag of a version below {floor}")
            elif response.status_code == 200:
                answered["200"] += 1
                seen = versions_of.get(response.json()["progress_message"])
                if seen is None or seen < floor:
                    violations.append(f"a body of version {seen} after version {floor} had committed")
            else:
                violations.append(f"{response.status_code}: {response.text}")

    def poll_current():
        # The ETag of the newest committed state: mostly 304s, the path that reads no PostgreSQL.
        http = requests.Session()
        while time.monotonic() < stop:
            with lock:
                floor = latest[0]
                asked = etags[floor]
            response = http.get(f"{live_server.url}/v1/jobs/{job.id}", headers={**headers, "If-None-Match": asked},
                                timeout=10)
            if response.status_code == 304:
                answered["304"] += 1
                if response.headers["ETag"] != asked:
                    violations.append("a 304 with another ETag")
            elif response.status_code == 200:
                answered["200"] += 1
                seen = versions_of.get(response.json()["progress_message"])
                if seen is None or seen <= floor:
                    violations.append(f"a 200 of version {seen} for the ETag of version {floor}")
            else:
                violations.append(f"{response.status_code}: {response.text}")

    threads = ([threading.Thread(target=write) for _ in range(2)] + [threading.Thread(target=poll) for _ in range(2)]
               + [threading.Thread(target=poll_current) for _ in range(2)])
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert violations == [], violations[:10]
    assert len(etags) > 30 and answered["304"] > 50 and answered["200"] > 50, (len(etags), answered)


def test_another_users_etag_is_404_not_304(client, user, other_user, headers, other_headers):
    job = make_job(other_user)
    etag = client.get(f"/v1/jobs/{job.id}", headers=other_headers).headers["ETag"]  # cached now

    response = client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": etag})
    waited = client.get(f"/v1/jobs/{job.id}?wait=2", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 404 and response.json["code"] == "not_found"
    assert waited.status_code == 404


def test_a_signed_out_token_gets_401_even_for_a_cached_job(client, user):
    login = client.post("/v1/auth/login", json={"email": user.email, "password": "correct horse battery"})
    if login.status_code != 200:  # the factory's users have no known password: register one
        email = f"poll-{uuid.uuid4().hex[:8]}@example.com"
        client.post("/v1/auth/register", json={"email": email, "password": "correct horse battery"})
        login = client.post("/v1/auth/login", json={"email": email, "password": "correct horse battery"})
    tokens = login.json
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    submitted = client.post("/v1/jobs", json={"type": "tasks.quick_add", "params": {"text": "x"}}, headers=headers)
    job_id = submitted.json["id"]
    etag = client.get(f"/v1/jobs/{job_id}", headers=headers).headers["ETag"]

    client.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"], "everywhere": True}, headers=headers)
    response = client.get(f"/v1/jobs/{job_id}", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 401 and response.json["code"] == "token_revoked"


def test_an_unreadable_entry_falls_back_to_the_database_and_is_replaced(client, user, headers):
    job = make_job(user)
    etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]
    cache_redis().delete(status_cache.entry_key(job.id))
    cache_redis().set(status_cache.entry_key(job.id), b"\xff not a hash")

    response = client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 304  # from PostgreSQL
    entry = status_cache.lookup(job.id)
    assert entry is not None and entry.etag == etag and entry.owner == str(user.id)


def test_a_missing_entry_is_refilled_and_a_stale_refill_never_wins(client, user, headers):
    job = make_job(user)
    with db.new_session() as session:
        old_row = session.execute(select(Job.__table__).where(Job.id == job.id)).one()
    with db.new_session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(progress=10))
        status_cache.track(session, [job.id])
        session.commit()
    new_etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]

    # A reader that read the old row before the change, and writes it back late: refused.
    status_cache.refill(old_row, job_to_dict(old_row), job_etag(job_to_dict(old_row)))

    assert status_cache.lookup(job.id).etag == new_etag
    cache_redis().delete(status_cache.entry_key(job.id))
    assert client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": new_etag}).status_code == 304
    assert status_cache.lookup(job.id).etag == new_etag


def test_a_pending_writer_keeps_polls_off_the_cache(client, user, headers):
    job = make_job(user)
    etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]
    assert status_cache.lookup(job.id) is not None

    with db.new_session() as session, db.new_session() as writer:
        session.execute(update(Job).where(Job.id == job.id).values(progress=55))
        session.commit()
        # A writer between its mark and its commit (status_cache.track marks the job pending):
        writer.connection()
        status_cache.track(writer, [job.id])
        assert status_cache.lookup(job.id) is None
        response = client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": etag})
        assert response.status_code == 200 and response.json["progress"] == 55  # the database answered
        assert status_cache.lookup(job.id) is None  # and did not refill under the writer
        writer.rollback()  # the writer gives up: its pending mark is released
    assert not cache_redis().exists(status_cache.pending_key(job.id))
    client.get(f"/v1/jobs/{job.id}", headers=headers)
    assert status_cache.lookup(job.id) is not None  # a poll refills it again


def test_the_workers_commits_leave_the_finished_job_in_the_cache(live_server, user):
    headers = auth_headers(user)
    submitted = requests.post(f"{live_server.url}/v1/jobs", headers=headers, timeout=10,
                              json={"type": "tasks.quick_add", "params": {"text": "cached call tomorrow 9am"}})
    job_id = submitted.json()["id"]
    # The submit cached it (the worker may already hold its pending mark, which drops only the ETag).
    assert cache_redis().hget(status_cache.entry_key(job_id), "version") is not None

    etag, job = submitted.headers["ETag"], submitted.json()
    deadline = time.monotonic() + 30
    while job["status"] != "succeeded" and time.monotonic() < deadline:
        answer = requests.get(f"{live_server.url}/v1/jobs/{job_id}?wait=5", headers={**headers, "If-None-Match": etag},
                              timeout=15)
        if answer.status_code == 200:
            etag, job = answer.headers["ETag"], answer.json()

    assert job["status"] == "succeeded"
    entry = status_cache.lookup(job_id)  # the finished state, at the row's version
    assert entry is not None and entry.status == "succeeded" and entry.etag == etag
    with db.session_scope() as session:
        assert entry.version == session.get(Job, uuid.UUID(job_id)).version
    final = requests.get(f"{live_server.url}/v1/jobs/{job_id}", headers={**headers, "If-None-Match": etag}, timeout=10)
    assert final.status_code == 304
