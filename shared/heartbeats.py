"""Worker heartbeats in Redis: each worker keeps a key with a TTL; the admin panel reads them.

A key per worker (`heartbeat:worker:<hostname>`), rewritten every WORKER_HEARTBEAT_SECONDS
by a thread of the worker's main process and left to expire three beats after the
worker stops answering. Reading who is online is then one SCAN and one MGET, instead of
a Celery broadcast that waits out a timeout for replies on every page load.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import redis

from shared.redis_clients import cache_redis
from shared.settings import get_settings

log = logging.getLogger(__name__)

PREFIX = "heartbeat:worker:"
MISSED_BEATS = 3  # a worker is gone once this many beats in a row went missing


def _key(hostname: str) -> str:
    return PREFIX + hostname


def write(*, hostname: str, queues: list[str], concurrency: int, started_at: float, interval: int) -> None:
    """Say this worker is alive for the next MISSED_BEATS intervals."""
    value = {
        "hostname": hostname, "queues": sorted(queues), "concurrency": concurrency, "pid": os.getpid(),
        "host": socket.gethostname(), "started_at": started_at, "seen_at": time.time(),
    }
    cache_redis().set(_key(hostname), json.dumps(value), ex=interval * MISSED_BEATS)


def remove(hostname: str) -> None:
    """A worker shutting down warmly leaves at once instead of after its TTL."""
    try:
        cache_redis().delete(_key(hostname))
    except redis.RedisError as exc:
        log.warning("heartbeat of %s not removed: %s", hostname, exc)


def online() -> list[dict]:
    """Every worker whose heartbeat has not expired, by hostname."""
    client = cache_redis()
    keys = sorted(client.scan_iter(match=PREFIX + "*", count=500))
    values = client.mget(keys) if keys else []
    return [json.loads(value) for value in values if value is not None]  # expired between SCAN and MGET


class Heartbeat:
    """The thread that keeps one worker's key alive until stopped."""

    def __init__(self, *, hostname: str, queues: list[str], concurrency: int, interval: int):
        self.hostname, self.queues, self.concurrency, self.interval = hostname, queues, concurrency, interval
        self.started_at = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                write(hostname=self.hostname, queues=self.queues, concurrency=self.concurrency,
                      started_at=self.started_at, interval=self.interval)
            except redis.RedisError as exc:  # Redis restarting: the next beat tries again
                log.warning("worker heartbeat not written: %s", exc)
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        remove(self.hostname)


_current: Heartbeat | None = None


def start_for(consumer) -> None:
    """Start beating for the Celery worker `consumer` (its main process, at worker_ready)."""
    global _current
    interval = get_settings().worker_heartbeat_seconds
    if interval <= 0:
        return
    queues = list(consumer.app.amqp.queues.consume_from or {})  # the worker's --queues
    _current = Heartbeat(hostname=consumer.hostname, queues=queues, concurrency=consumer.controller.concurrency,
                         interval=interval).start()


def stop() -> None:
    global _current
    if _current is not None:
        _current.stop()
        _current = None
