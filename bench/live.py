"""Live output and held connections: `python -m bench.live` (loopback only, bounded).

1. Time to first token: the fake OpenAI server streams an answer at a fixed pace (a chunk of
   4 characters every 50 ms); an SSE client on the events process records when the first
   `token` event and `done` arrive. The platform's added latency is that arrival less the
   moment the fake sent its first text chunk (and its last chunk, for `done`). Both clocks are
   this process's time.monotonic(): the fake runs in it.
2. Held connections: 2,000 connections held on the events process (gunicorn -k gevent) from
   200 accounts, half event streams and half ?wait=30 long-polls of queued jobs, while
   GET /v1/me is timed on the threaded web process, against its idle figure.

The database and Redis are the ones of TEST_DATABASE_URL / TEST_REDIS_URL (a bench database
of its own is best); results go to bench/results/live.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import requests

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def setup() -> None:
    os.environ["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    redis_url = os.environ["TEST_REDIS_URL"]
    os.environ["REDIS_URL"] = redis_url
    for name in ("BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URL"):
        os.environ.pop(name, None)
    os.environ.update({"RATE_LIMIT_ENABLED": "false", "GUNICORN_ACCESSLOG": "", "LOG_LEVEL": "WARNING"})


def time_to_first_token(runs: int) -> dict:
    from tests.fakes.openai_server import FakeOpenAI
    from tests.support import EventsProcess, ServerProcess, WorkerProcess, auth_headers, create_user, sse_events

    fake = FakeOpenAI().start()
    fake.chunk_seconds, fake.chunk_chars = 0.05, 4
    env = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": fake.url, "OPENAI_MODEL": "fake-model",
           "AI_MAX_RETRIES": "0"}
    worker = WorkerProcess(env=env, queues="interactive", concurrency=2).start()
    web = ServerProcess(env).start()
    events = EventsProcess(env).start()
    first_added, done_added = [], []
    try:
        headers = auth_headers(create_user(f"ttft-{uuid.uuid4().hex[:8]}@example.com"))
        answer = "Here is the plan for your day, step by step, as it is written. " * 2
        for _ in range(runs):
            fake.script(fake.reply(answer))
            job_id = requests.post(f"{web.url}/v1/jobs", headers=headers, timeout=10,
                                   json={"type": "agent.assistant", "params": {"message": "plan"}}).json()["id"]
            first = done = None
            with requests.get(f"{events.url}/v1/jobs/{job_id}/events", headers=headers, stream=True,
                              timeout=30) as response:
                for _id, kind, _data in sse_events(response):
                    if kind == "token" and first is None:
                        first = time.monotonic()
                    if kind == "done":
                        done = time.monotonic()
            sent_first, sent_last = fake.chunk_times[-1]
            first_added.append((first - sent_first) * 1000)
            done_added.append((done - sent_last) * 1000)
    finally:
        events.stop()
        web.stop()
        worker.stop()
        fake.stop()
    return {
        "runs": runs, "chunk_ms": 50, "chunk_chars": 4,
        "first_token_added_ms": {"p50": percentile(first_added, 50), "p95": percentile(first_added, 95),
                                 "max": max(first_added)},
        "done_added_ms": {"p50": percentile(done_added, 50), "p95": percentile(done_added, 95),
                          "max": max(done_added)},
        "target": "p95 <= 50 ms for both",
    }


async def _hold(port: int, path: str, token: str, held: dict, failed: list, stop: asyncio.Event) -> None:
    """Keep one connection held: a stream until stopped, a long-poll asked again each time it answers."""
    counted = False
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
                         "Connection: close\r\n\r\n".encode())
            await writer.drain()
            status = await asyncio.wait_for(reader.readline(), timeout=60)
            if b" 200 " not in status and b" 304 " not in status:
                failed.append(status.decode(errors="replace").strip() or "no answer")
                writer.close()
                await asyncio.sleep(1)
                continue
            if not counted:
                counted = True
                held["now"] += 1
            while not stop.is_set():  # read what comes (heartbeats), as a client would
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), timeout=1)
                except asyncio.TimeoutError:
                    continue
                if not chunk:
                    break  # a poll answered: ask again
            writer.close()
        except (OSError, asyncio.TimeoutError) as exc:
            failed.append(type(exc).__name__)
            await asyncio.sleep(1)


def time_me(url: str, headers: dict, n: int) -> list[float]:
    session = requests.Session()
    times = []
    for _ in range(n):
        started = time.perf_counter()
        assert session.get(f"{url}/v1/me", headers=headers, timeout=10).status_code == 200
        times.append((time.perf_counter() - started) * 1000)
    return times


def held_connections(accounts: int, per_account: int, samples: int) -> dict:
    from tests.factories import make_job
    from tests.support import EventsProcess, ServerProcess, auth_headers, create_user

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    half = per_account // 2
    env = {"MAX_STREAMS_PER_USER": str(half), "MAX_LONG_POLLS_PER_USER": str(per_account - half),
           "EVENTS_WORKER_CONNECTIONS": str(accounts * per_account + 500)}
    web = ServerProcess(env).start()
    events = EventsProcess(env).start()
    try:
        users = [create_user(f"held-{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(accounts)]
        plan = []
        for user in users:
            token = auth_headers(user)["Authorization"].removeprefix("Bearer ")
            for i in range(per_account):
                job = make_job(user)  # queued, no message: nothing finishes it while it is held
                path = f"/v1/jobs/{job.id}/events" if i < half else f"/v1/jobs/{job.id}?wait=30"
                plan.append((path, token))
        me_headers = auth_headers(users[0])
        time_me(web.url, me_headers, 20)  # warm up
        idle = time_me(web.url, me_headers, samples)

        async def load():
            held, failed, stop = {"now": 0}, [], asyncio.Event()
            tasks = []
            for i, (path, token) in enumerate(plan):
                tasks.append(asyncio.create_task(_hold(events.port, path, token, held, failed, stop)))
                if i % 25 == 24:
                    await asyncio.sleep(0.25)  # 100 new connections a second, as a crowd arrives
            deadline = time.monotonic() + 60
            while held["now"] < len(plan) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            loaded = await asyncio.to_thread(time_me, web.url, me_headers, samples)
            held = held["now"]
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            return held, failed, loaded

        held, failed, loaded = asyncio.run(load())
    finally:
        events.stop()
        web.stop()
    idle_p95, loaded_p95 = percentile(idle, 95), percentile(loaded, 95)
    return {
        "accounts": accounts, "connections": len(plan), "held": held, "refused_or_failed": len(failed),
        "failures": sorted(set(failed))[:5],
        "me_idle_ms": {"p50": percentile(idle, 50), "p95": idle_p95},
        "me_loaded_ms": {"p50": percentile(loaded, 50), "p95": loaded_p95},
        "ratio_p95": loaded_p95 / idle_p95 if idle_p95 else None,
        "target": "loaded p95 <= 2 x idle p95",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="live output and held-connection benchmarks")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--per-account", type=int, default=10)  # half streams, half ?wait=30 polls
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--only", choices=("ttft", "held"))
    args = parser.parse_args()
    setup()
    from tests.preflight import main as preflight

    if preflight():
        return 2
    results = {"started_at": datetime.now(timezone.utc).isoformat(), "cpus": os.cpu_count()}
    if args.only in (None, "ttft"):
        results["time_to_first_token"] = time_to_first_token(args.runs)
        print(json.dumps(results["time_to_first_token"], indent=2), flush=True)
    if args.only in (None, "held"):
        results["held_connections"] = held_connections(args.accounts, args.per_account, args.samples)
        print(json.dumps(results["held_connections"], indent=2), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "live.json" if args.only is None else f"live-{args.only}.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
