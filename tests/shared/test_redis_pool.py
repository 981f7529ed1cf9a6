"""REDIS_POOL_SIZE bounds our redis-py pools: past it a caller waits, then falls back."""
from __future__ import annotations

import uuid

from shared import redis_clients
from shared.jobs import JobWaiter
from tests.support import refresh_settings


def test_long_polls_beyond_the_pool_fall_back_to_polling_instead_of_opening_more(monkeypatch):
    monkeypatch.setenv("REDIS_POOL_SIZE", "2")
    refresh_settings()
    waiters = []
    try:
        waiters = [JobWaiter(uuid.uuid4()) for _ in range(3)]
        subscribed = [w for w in waiters if w._pubsub is not None]
        assert len(subscribed) == 2  # the third found no free connection and polls instead
        assert redis_clients.cache_redis().connection_pool.max_connections == 2
        waiters[2].wait(0.01)  # and still waits, by polling
    finally:
        for waiter in waiters:
            waiter.close()
        monkeypatch.delenv("REDIS_POOL_SIZE")
        refresh_settings()
