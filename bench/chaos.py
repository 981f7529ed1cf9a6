"""Fault suite: a steady stream of quick-add submissions while workers are SIGKILLed, Redis
and PostgreSQL restart, and beat stops and then runs twice. Afterwards every accepted job
must be finished, none twice in effect, none lost, and no request answered 500.

    python -m bench.chaos            # the full run (make chaos)
    python -m bench.chaos --quick    # the bounded run that make test also does

Everything runs against throwaway PostgreSQL and Redis servers on free ports.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import psycopg2
import requests

from bench.servers import ThrowawayPostgres, ThrowawayRedis

TERMINAL = ("succeeded", "failed", "canceled")


@dataclass
class Plan:
    seconds: float
    worker_kills: int
    rate: float  # submissions per second
    redis_restart_at: float
    postgres_restart_at: float
    beat_gap_at: float
    drain_seconds: float = 240


FULL = Plan(seconds=150, worker_kills=10, rate=12, redis_restart_at=40, postgres_restart_at=80, beat_gap_at=105)
QUICK = Plan(seconds=55, worker_kills=3, rate=6, redis_restart_at=15, postgres_restart_at=30, beat_gap_at=40,
             drain_seconds=180)


@dataclass
class Outcome:
    faults: list[str] = field(default_factory=list)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    accepted: set = field(default_factory=set)
    ready_down_seen: set = field(default_factory=set)
    report: dict = field(default_factory=dict)


def run(plan: Plan, *, log=print) -> Outcome:
    postgres = ThrowawayPostgres().init()
    redis_server = ThrowawayRedis().start()
    env = {
        "DATABASE_URL": postgres.url,
        "REDIS_URL": redis_server.url,
        "RATE_LIMIT_ENABLED": "false",
        "MAX_ACTIVE_JOBS_PER_USER": "1000000",
        "SWEEP_INTERVAL_SECONDS": "2",
        "STUCK_QUEUED_SECONDS": "20",
        "ORPHAN_GRACE_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    for name in ("BROKER_URL", "CACHE_REDIS_URL", "RATELIMIT_STORAGE_URL"):
        os.environ.pop(name, None)

    # Imported after the environment points at the throwaway servers.
    from shared import migrate
    from tests.support import BeatProcess, ServerProcess, WorkerProcess, auth_headers, create_user, refresh_settings

    refresh_settings()
    migrate.upgrade()
    users = [create_user(f"chaos-{n}@example.com") for n in range(4)]
    headers = [auth_headers(u) for u in users]

    outcome = Outcome()
    server = ServerProcess(env=env).start()
    workers = [WorkerProcess(env=env).start() for _ in range(2)]
    beats = [BeatProcess(env=env).start()]
    stop = threading.Event()
    lock = threading.Lock()

    def submitter():
        http = requests.Session()
        interval = 1.0 / plan.rate
        n = 0
        while not stop.is_set():
            started = time.monotonic()
            n += 1
            try:
                if n % 4 == 0:
                    # Every fourth request an offline queue's flush: three jobs committed together, sent in one go.
                    response = http.post(f"{server.url}/v1/jobs/batch", headers=random.choice(headers), timeout=15,
                                         json={"jobs": [{"type": "tasks.quick_add",
                                                         "params": {"text": f"chaos batch {n}.{i} tomorrow 9am"}}
                                                        for i in range(3)]})
                else:
                    response = http.post(f"{server.url}/v1/jobs", headers=random.choice(headers), timeout=15,
                                         json={"type": "tasks.quick_add",
                                               "params": {"text": f"chaos task {n} tomorrow 9am"}})
                with lock:
                    outcome.statuses[response.status_code] += 1
                    if response.status_code == 503 and not response.headers.get("Retry-After"):
                        outcome.statuses["503 without Retry-After"] += 1
                    if response.status_code == 202:
                        outcome.accepted.add(response.json()["id"])
                    elif response.status_code == 200 and "items" in response.json():
                        for item in response.json()["items"]:
                            if "id" in item:
                                outcome.accepted.add(item["id"])
                            else:
                                outcome.statuses[f"batch item {item['error']['code']}"] += 1
            except requests.RequestException:
                with lock:
                    outcome.statuses["no answer"] += 1
            time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def ready_watcher():
        while not stop.is_set():
            try:
                body = requests.get(f"{server.url}/ready", timeout=5).json()
                for name, state in (body.get("checks") or body.get("errors", {}).get("checks", {})).items():
                    if state == "down":
                        outcome.ready_down_seen.add(name)
            except requests.RequestException:
                pass
            time.sleep(0.5)

    threads = [threading.Thread(target=submitter, daemon=True), threading.Thread(target=ready_watcher, daemon=True)]
    for thread in threads:
        thread.start()

    kill_times = sorted(random.uniform(3, plan.seconds - 5) for _ in range(plan.worker_kills))
    events = [(t, "kill") for t in kill_times] + [
        (plan.redis_restart_at, "redis"), (plan.postgres_restart_at, "postgres"), (plan.beat_gap_at, "beat"),
    ]
    started = time.monotonic()
    try:
        for at, what in sorted(events):
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            if what == "kill":
                index = random.randrange(len(workers))
                outcome.faults.append(_kill_worker(workers, index, env, WorkerProcess))
            elif what == "redis":
                redis_server.restart(down_seconds=3)
                outcome.faults.append("redis restarted (3 s down, nothing kept)")
            elif what == "postgres":
                postgres.restart(down_seconds=5)
                outcome.faults.append("postgres crashed and restarted (5 s down)")
            elif what == "beat":
                for beat in beats:
                    beat.stop()
                time.sleep(8)
                beats = [BeatProcess(env=env).start(), BeatProcess(env=env).start()]
                outcome.faults.append("beat stopped 8 s, then two beats at once")
            log(f"[chaos] t={time.monotonic() - started:5.1f}s {outcome.faults[-1]}")
        time.sleep(max(0.0, plan.seconds - (time.monotonic() - started)))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

    try:
        log(f"[chaos] load stopped; {len(outcome.accepted)} accepted; draining (at most {plan.drain_seconds:.0f} s)")
        outcome.report = _drain_and_check(postgres, outcome.accepted, plan.drain_seconds)
    finally:
        for process in [server, *workers, *beats]:
            process.stop()
        postgres.destroy()
        redis_server.destroy()
    return outcome


def _kill_worker(workers, index, env, worker_class) -> str:
    """SIGKILL either one pool process of a worker or the whole worker (then start a new one)."""
    import psutil

    worker = workers[index]
    children = psutil.Process(worker.proc.pid).children(recursive=True) if worker.proc.poll() is None else []
    if children and random.random() < 0.5:
        victim = random.choice(children)
        os.kill(victim.pid, signal.SIGKILL)
        return f"SIGKILL pool process {victim.pid} of worker {index}"
    worker.kill()
    workers[index] = worker_class(env=env).start()
    return f"SIGKILL whole worker {index}, started a new one"


def _drain_and_check(postgres: ThrowawayPostgres, accepted: set, drain_seconds: float) -> dict:
    def rows():
        connection = psycopg2.connect(postgres.url)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT id::text, status, attempts FROM jobs")
                jobs = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
                cursor.execute("SELECT source_job_id::text, count(*) FROM tasks GROUP BY 1")
                tasks = dict(cursor.fetchall())
            return jobs, tasks
        finally:
            connection.close()

    deadline = time.monotonic() + drain_seconds
    while True:
        jobs, tasks = rows()
        unfinished = [job_id for job_id in accepted if jobs.get(job_id, ("missing",))[0] not in TERMINAL]
        if not unfinished or time.monotonic() > deadline:
            break
        time.sleep(2)

    statuses = collections.Counter(jobs.get(job_id, ("missing", 0))[0] for job_id in accepted)
    succeeded = {job_id for job_id in accepted if jobs.get(job_id, ("",))[0] == "succeeded"}
    return {
        "accepted": len(accepted),
        "finished": sum(statuses[s] for s in TERMINAL),
        "by_status": dict(statuses),
        "lost": len(unfinished),
        "duplicates": sum(count - 1 for count in tasks.values() if count > 1),
        "succeeded_without_task": len([j for j in succeeded if j not in tasks]),
        "tasks_without_success": len([j for j in tasks if j not in succeeded]),
        "retried": sum(1 for job_id in accepted if jobs.get(job_id, ("", 0))[1] > 1),
    }


def table(outcome: Outcome) -> str:
    report = outcome.report
    server_errors = sum(n for code, n in outcome.statuses.items() if isinstance(code, int) and code >= 500)
    lines = [
        "| measure | value |", "|---|---|",
        f"| faults injected | {len(outcome.faults)} |",
        f"| requests by status | {dict(sorted(outcome.statuses.items(), key=str))} |",
        f"| jobs accepted (202) | {report['accepted']} |",
        f"| jobs finished | {report['finished']} {report['by_status']} |",
        f"| jobs retried (attempts > 1) | {report['retried']} |",
        f"| duplicates (tasks beyond one per job) | {report['duplicates']} |",
        f"| effects without a succeeded job / successes without effect | "
        f"{report['tasks_without_success']} / {report['succeeded_without_task']} |",
        f"| lost | {report['lost']} |",
        f"| 5xx seen (all must be 503 with Retry-After) | {server_errors} |",
        f"| /ready reported down | {', '.join(sorted(outcome.ready_down_seen)) or 'never'} |",
    ]
    return "\n".join(lines)


def verdict(outcome: Outcome) -> list[str]:
    """What went wrong, if anything (an empty list passes)."""
    report = outcome.report
    problems = []
    if report["lost"]:
        problems.append(f"{report['lost']} accepted jobs never finished")
    if report["duplicates"] or report["tasks_without_success"] or report["succeeded_without_task"]:
        problems.append("an effect was applied twice or without its job")
    server_errors = {code: n for code, n in outcome.statuses.items() if isinstance(code, int) and code >= 500 and code != 503}
    if server_errors:
        problems.append(f"requests answered {server_errors}")
    if outcome.statuses.get("503 without Retry-After"):
        problems.append("a 503 came without Retry-After")
    if not report["accepted"]:
        problems.append("no job was accepted at all")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the bounded run of make test")
    args = parser.parse_args()
    outcome = run(QUICK if args.quick else FULL)
    print()
    print(table(outcome))
    print()
    print("faults:", json.dumps(outcome.faults, indent=1))
    problems = verdict(outcome)
    print("RESULT:", "ok" if not problems else "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
