"""Sends follow commits by themselves (shared.jobs.outbox): what a transaction registers leaves
after its commit, and never when it (or the savepoint it registered in) rolls back."""
from __future__ import annotations

import time

import pytest
import redis

from shared import db
from shared.celery_app import app as celery_app
from shared.jobs import outbox, send_job, status_cache
from shared.models import utcnow
from shared.redis_clients import cache_redis
from shared.settings import get_settings
from tests.factories import load_job, make_job
from tests.support import free_port

pytestmark = pytest.mark.truncate


def in_broker(run_token: str) -> bool:
    """Whether a message with this task id waits on the broker (or is held by a worker)."""
    broker = redis.Redis.from_url(get_settings().broker_url)
    for key in broker.scan_iter():
        kind = broker.type(key)
        if kind == b"list" and any(run_token.encode() in m for m in broker.lrange(key, 0, -1)):
            return True
        if kind == b"hash" and any(run_token.encode() in v for v in broker.hvals(key)):
            return True
    return False


def sent(job) -> bool:
    """The message left: it waits on the broker, or a worker already claimed the job."""
    return in_broker(job.run_token) or load_job(job.id).status != "queued"


def test_a_send_registered_then_rolled_back_never_reaches_the_broker(user):
    job = make_job(user, enqueued_at=utcnow())

    with db.new_session() as session:
        load = session.get  # the transaction is open
        load(type(job), job.id)
        send_job(session, job.id, job.run_token, type_name=job.type)
        assert not in_broker(job.run_token)  # nothing leaves before the commit
        session.rollback()
        session.commit()  # a later commit of the same session sends nothing either

    time.sleep(0.3)
    assert not sent(job)
    assert outbox.pending(session) == []


def test_a_rolled_back_savepoint_drops_its_sends_and_the_outer_commit_sends_the_rest(user):
    kept, dropped, released = (make_job(user, enqueued_at=utcnow()) for _ in range(3))

    with db.new_session() as session:
        session.get(type(kept), kept.id)
        send_job(session, kept.id, kept.run_token, type_name=kept.type)
        savepoint = session.begin_nested()
        send_job(session, dropped.id, dropped.run_token, type_name=dropped.type)
        savepoint.rollback()
        inner = session.begin_nested()
        send_job(session, released.id, released.run_token, type_name=released.type)
        inner.commit()  # a released savepoint: its sends wait for the outer commit
        assert sent(released) is False
        session.commit()

    assert sent(kept) and sent(released)
    assert not sent(dropped)


def test_the_pending_mark_is_set_before_the_commit_and_released_on_rollback(user):
    job = make_job(user)

    with db.new_session() as session:
        session.get(type(job), job.id)
        status_cache.track(session, [job.id])
        assert cache_redis().exists(status_cache.pending_key(job.id))  # polls go to the database now
        savepoint = session.begin_nested()
        status_cache.track(session, [job.id])
        assert int(cache_redis().get(status_cache.pending_key(job.id))) == 2
        savepoint.rollback()
        assert int(cache_redis().get(status_cache.pending_key(job.id))) == 1
        session.rollback()

    assert not cache_redis().exists(status_cache.pending_key(job.id))


def test_a_broker_failure_after_commit_leaves_the_job_to_the_sweeper(user, monkeypatch):
    job = make_job(user, enqueued_at=utcnow())
    # The broker goes away: Celery's producer pool is rebuilt for a closed port.
    monkeypatch.setitem(celery_app.conf, "broker_url", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)

    with db.new_session() as session:
        session.get(type(job), job.id)
        sending = send_job(session, job.id, job.run_token, type_name=job.type)
        session.commit()  # does not raise

    monkeypatch.undo()  # back to the real broker for the tests after this one
    celery_app._pool = celery_app.amqp._producer_pool = None
    assert sending.sent is False
    row = load_job(job.id)
    assert row.enqueued_at is None and row.status == "queued"  # the sweeper's next round sends it
