"""One Redis subscriber per process, fanned out in memory to the streams that wait on a job.

Thousands of open event streams must not mean thousands of Redis connections: a single
pattern subscription (`job:*`, the wake-ups every job change and every live-output append
already publishes) runs in a background thread (a greenlet under the events process's
gevent), and sets the in-memory flag of each stream watching that job. A woken stream then
reads what is new with one short command on the pooled client; nothing holds a connection
per client. A lost subscription wakes every stream, so none misses what happened meanwhile.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

import redis

from shared.redis_clients import cache_redis

log = logging.getLogger(__name__)


class Hub:
    def __init__(self):
        self._lock = threading.Lock()
        self._watchers: dict[str, set[threading.Event]] = {}
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self.subscribed = False  # False: wake-ups may be missed, so waiters poll

    @contextlib.contextmanager
    def watch(self, job_id) -> Iterator[threading.Event]:
        """A flag set at each wake-up of this job while the block runs (clear it before reading)."""
        self._ensure_running()
        key = str(job_id)
        flag = threading.Event()
        with self._lock:
            self._watchers.setdefault(key, set()).add(flag)
        try:
            yield flag
        finally:
            with self._lock:
                flags = self._watchers.get(key)
                if flags is not None:
                    flags.discard(flag)
                    if not flags:
                        del self._watchers[key]

    @contextlib.contextmanager
    def waiter(self, job_id) -> Iterator["Waiter"]:
        """What a long-poll waits on: the job's wake-ups, without a Redis connection of its own."""
        with self.watch(job_id) as flag:
            yield Waiter(self, flag)

    def watching(self) -> int:
        with self._lock:
            return sum(len(flags) for flags in self._watchers.values())

    def _ensure_running(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="events-hub", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        backoff = 0.5
        while True:
            pubsub = None
            try:
                pubsub = cache_redis().pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe("job:*")
                self.subscribed = True
                backoff = 0.5
                self._wake_all()  # whatever happened while we were not subscribed
                while True:
                    message = pubsub.get_message(timeout=5.0)
                    if message is None:
                        continue
                    channel = message.get("channel") or b""
                    job_id = (channel.decode() if isinstance(channel, bytes) else str(channel)).removeprefix("job:")
                    with self._lock:
                        flags = list(self._watchers.get(job_id, ()))
                    for flag in flags:
                        flag.set()
            except (redis.RedisError, OSError) as exc:
                self.subscribed = False
                log.warning("events hub lost its subscription, resubscribing: %s", exc)
                self._wake_all()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()

    def _wake_all(self) -> None:
        with self._lock:
            flags = [flag for flags in self._watchers.values() for flag in flags]
        for flag in flags:
            flag.set()


class Waiter:
    POLL_SECONDS = 0.5  # while the hub has no subscription (Redis away): poll, as before

    def __init__(self, hub: Hub, flag: threading.Event):
        self._hub = hub
        self._flag = flag

    def wait(self, timeout: float) -> None:
        """Return at the job's next wake-up (or one that came since the last wait), or after `timeout`."""
        if not self._hub.subscribed:
            timeout = min(timeout, self.POLL_SECONDS)
        self._flag.wait(max(timeout, 0.0))
        self._flag.clear()


hub = Hub()
