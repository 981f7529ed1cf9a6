"""Operator jobs."""
from __future__ import annotations

import time

from shared.celery_app import app
from shared.redis_clients import cache_redis
from workers.job_runner import JobContext, JobFailed, RetryableJobError, job_task


@job_task("ops.ping")
def ping(ctx: JobContext) -> dict:
    """Sleep in one-second steps (reporting progress, so a cancel stops it), then answer."""
    seconds = float(ctx.params.get("sleep_seconds", 0))
    fail = ctx.params.get("fail", "never")
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        ctx.progress(int(100 * elapsed / seconds), f"sleeping, {seconds - elapsed:.0f} s left")
        time.sleep(min(1.0, seconds - elapsed))
    if fail == "always":
        raise JobFailed("ping_failed", "Failed on request.")
    if fail == "first_attempt" and ctx.attempt == 1:
        raise RetryableJobError("ping_retry", "Failing the first attempt on request.", retry_after=0.5)
    return {"pong": True, "attempt": ctx.attempt, "slept_seconds": seconds}


@app.task(name="bench.raw_noop", acks_late=True, ignore_result=True)
def raw_noop(counter_key: str) -> None:
    """A bare Celery task for `make bench`'s baseline: one Redis INCR and nothing of ours."""
    client = cache_redis()
    client.incr(counter_key)
    client.set(f"{counter_key}:last", time.time())
