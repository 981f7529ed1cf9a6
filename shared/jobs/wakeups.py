"""Job-change wake-ups over Redis pub/sub: writers publish after their commit, long-polls wait."""
from __future__ import annotations

import logging
import time

import redis

from shared.redis_clients import cache_redis

log = logging.getLogger(__name__)

def channel(job_id) -> str:
    return f"job:{job_id}"


def wake(job_id) -> None:
    """Wake whoever long-polls this job now; a lost wake-up only costs a poll interval."""
    try:
        cache_redis().publish(channel(job_id), b"1")
    except redis.RedisError as exc:
        log.warning("job wake-up not sent for %s: %s", job_id, exc)


class JobWaiter:
    """Waits for changes of one job: pub/sub when Redis answers, else a bounded poll."""

    POLL_SECONDS = 0.5

    def __init__(self, job_id):
        self.job_id = job_id
        self._pubsub = None
        try:
            self._pubsub = cache_redis().pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(channel(job_id))
        except redis.RedisError as exc:
            log.warning("long-poll falls back to polling: %s", exc)
            self.close()

    def wait(self, timeout: float) -> None:
        """Return at the next notification, or after `timeout` (at most a poll interval without Redis)."""
        if self._pubsub is None:
            time.sleep(min(timeout, self.POLL_SECONDS))
            return
        try:
            self._pubsub.get_message(timeout=max(timeout, 0.0))
        except redis.RedisError:
            self.close()
            time.sleep(min(timeout, self.POLL_SECONDS))

    def close(self) -> None:
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except redis.RedisError:
                pass
            self._pubsub = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
