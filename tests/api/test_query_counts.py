"""SQL statements per request on the hot paths, so they cannot creep up unnoticed."""
from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event

from shared import db
from tests.factories import make_job

# Counted statement by statement: a rolled-back test would add its SAVEPOINTs to the count.
pytestmark = pytest.mark.truncate


@contextlib.contextmanager
def counted_statements():
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement.split()[0].upper())

    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_poll_reads_the_user_and_the_job(client, user, headers):
    job = make_job(user)
    client.get(f"/v1/jobs/{job.id}", headers=headers)  # warm the pool

    with counted_statements() as statements:
        response = client.get(f"/v1/jobs/{job.id}", headers=headers)

    assert response.status_code == 200
    assert statements == ["SELECT", "SELECT"], statements


def test_a_submit_stays_within_its_statement_budget(client, headers):
    body = {"type": "tasks.quick_add", "params": {"text": "buy milk"}}
    # Warms the pool and caches the token's state, and leaves no active job: a submit beside
    # one would pick its random slot, and once in twenty pick again (shared.jobs.submit).
    client.get("/v1/me", headers=headers)

    with counted_statements() as statements:
        response = client.post("/v1/jobs", json=body, headers=headers)

    assert response.status_code == 202
    # The user's active slots and the insert: no lock, no savepoint, and no read of the user's
    # row (the token and its user's version in Redis authorise it).
    assert statements == ["SELECT", "INSERT"], statements


def test_a_submit_reads_the_users_row_when_redis_cannot_vouch_for_the_token(client, user, headers):
    from shared.redis_clients import cache_redis
    from shared.revocation import version_key

    body = {"type": "tasks.quick_add", "params": {"text": "buy milk"}}
    client.get("/v1/me", headers=headers)
    cache_redis().delete(version_key(user.id))  # Redis restarted empty, or the key expired

    with counted_statements() as statements:
        response = client.post("/v1/jobs", json=body, headers=headers)

    assert response.status_code == 202
    # The user, the version and revoked families reloaded into Redis, the slots, the insert.
    assert statements[0] == "SELECT" and statements[-2:] == ["SELECT", "INSERT"] and len(statements) == 5, statements


def test_a_submit_with_an_idempotency_key_costs_one_lookup_more(client, headers):
    body = {"type": "tasks.quick_add", "params": {"text": "buy milk"}}
    client.get("/v1/me", headers=headers)

    with counted_statements() as statements:
        response = client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": "k1"})

    assert response.status_code == 202
    assert statements == ["SELECT", "SELECT", "INSERT"], statements


def test_an_unchanged_poll_answered_from_redis_makes_no_sql_statement(client, user, headers):
    job = make_job(user)
    etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]  # read from PostgreSQL: fills the cache

    with counted_statements() as statements:
        response = client.get(f"/v1/jobs/{job.id}", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 304
    assert response.headers["ETag"] == etag
    assert statements == [], statements  # neither the job nor the user's row


def test_a_cached_long_poll_that_times_out_makes_no_sql_statement(client, user, headers):
    job = make_job(user)
    etag = client.get(f"/v1/jobs/{job.id}", headers=headers).headers["ETag"]  # fills the cache

    with counted_statements() as statements:
        response = client.get(f"/v1/jobs/{job.id}?wait=1", headers={**headers, "If-None-Match": etag})

    assert response.status_code == 304
    assert statements == [], statements


def test_a_jobs_run_on_the_worker_is_two_statements(user):
    """The claim commits by itself (no BEGIN, SET LOCAL or COMMIT around it) and the finish
    learns whether anyone is to be told in its own RETURNING: a no-op job is two UPDATEs."""
    import workers  # noqa: F401  (the tasks register their bodies)
    from shared.jobtypes import get_job_type
    from tests.factories import load_job
    from workers.job_runner import BODIES, run_job

    jobs = [make_job(user, type="ops.ping", params={}) for _ in range(2)]
    run_job(BODIES["ops.ping"], job_type=get_job_type("ops.ping"), job_id=jobs[0].id, run_token=jobs[0].run_token)

    with counted_statements() as statements:
        outcome = run_job(BODIES["ops.ping"], job_type=get_job_type("ops.ping"), job_id=jobs[1].id,
                          run_token=jobs[1].run_token)

    assert outcome == "succeeded" and load_job(jobs[1].id).status == "succeeded"
    if db.get_engine().dialect.name == "postgresql":
        assert statements == ["UPDATE", "UPDATE"], statements
