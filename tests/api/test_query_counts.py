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
    client.post("/v1/jobs", json=body, headers=headers)

    with counted_statements() as statements:
        response = client.post("/v1/jobs", json=body, headers=headers)

    assert response.status_code == 202
    # The user, the user's active slots, the insert: no lock, no savepoint.
    assert statements == ["SELECT", "SELECT", "INSERT"], statements


def test_a_submit_with_an_idempotency_key_costs_one_lookup_more(client, headers):
    body = {"type": "tasks.quick_add", "params": {"text": "buy milk"}}
    client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": "warm"})

    with counted_statements() as statements:
        response = client.post("/v1/jobs", json=body, headers={**headers, "Idempotency-Key": "k1"})

    assert response.status_code == 202
    assert statements == ["SELECT", "SELECT", "SELECT", "INSERT"], statements


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
