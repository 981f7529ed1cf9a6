"""The baseline a user would write instead of this platform: a plain Celery app.

Same broker, same durability as the platform's job tasks (acks_late, prefetch 1, JSON,
ignore_result), and nothing else of ours: no task events for Flower, no
max-tasks-per-child, no priority steps, no signals. `bench.worker` runs it with prefork
concurrency 2. The task does what the raw baseline always did: one INCR, and the time of
the last one, so the bench sees when the queue is drained.
"""
from __future__ import annotations

import os
import time

import redis
from celery import Celery

# The bench's Redis (bench.run's BENCH_REDIS_URL); the counter lives beside the queue.
BROKER_URL = os.environ.get("BENCH_RAW_BROKER_URL") or os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
COUNTER_URL = BROKER_URL
QUEUE = "bench_raw"

app = Celery("raw", broker=BROKER_URL)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
)

_client: redis.Redis | None = None


@app.task(name="bench.plain_noop")
def plain_noop(counter_key: str) -> None:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(COUNTER_URL)
    _client.incr(counter_key)
    _client.set(f"{counter_key}:last", time.time())
