"""The cache Redis client of this process (job-status cache, wake-ups, token versions, limits)."""
from __future__ import annotations

import os
import threading

import redis

from shared.settings import get_settings

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
