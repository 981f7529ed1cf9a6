"""Job-change notifications over Redis pub/sub: workers publish, long-polls wait."""
from __future__ import annotations

import logging
import os
import threading
import time

import redis

from shared.settings import get_settings

log = logging.getLogger(__name__)

_client: redis.Redis | None = None
_client_pid: int | None = None
# Every authenticated request asks for the client, so a gunicorn worker's threads all ask
# at once on its first burst. Two clients made side by side would leave one unreferenced
# as soon as its caller's pipeline had it, and a dropped client disconnects its pool,
# under the pipeline still using it ("I/O operation on closed file": a 500).
_client_lock = threading.Lock()


def cache_redis() -> redis.Redis:
    """The cache/notification Redis client of this process (one, however many threads ask first)."""
    global _client, _client_pid
    client = _client
    if client is not None and _client_pid == os.getpid():
        return client
    with _client_lock:
        if _client is None or _client_pid != os.getpid():
            settings = get_settings()
            # Bounded (REDIS_POOL_SIZE): past it a caller waits briefly for a connection, and a
            # long-poll that gets none falls back to polling, instead of opening without limit.
            pool = redis.BlockingConnectionPool.from_url(
                settings.cache_redis_url,
                max_connections=settings.redis_pool_size,
                timeout=2,
                socket_timeout=5,
                socket_connect_timeout=2,
                health_check_interval=30,
            )
            _client = redis.Redis(connection_pool=pool)
            _client_pid = os.getpid()
        return _client


def reset() -> None:
    global _client
    _client = None


def channel(job_id) -> str:
    return f"job:{job_id}"


def publish_job_change(job_id) -> None:
    """Wake whoever long-polls this job; a lost notification only costs a poll interval."""
    try:
        cache_redis().publish(channel(job_id), b"1")
    except redis.RedisError as exc:
        log.warning("job change notification not sent for %s: %s", job_id, exc)


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
