"""`python -m bench.worker`: what one job costs the worker, against raw Celery, in one run.

Each figure drains N no-op messages queued in advance through a prefork worker of
concurrency 2 that is up and idle: the worker starts on an empty queue and is told to
consume the full one (`add_consumer`) once the meter runs, so neither its start nor the
sender's work is in the figure.

  plain     bench.raw_celery: the plain Celery app a user would write instead (acks_late,
            prefetch 1, JSON, and nothing else of ours)
  project   the same bare task on this project's Celery app and worker settings (task events
            for Flower, max-tasks-per-child, priority steps, our signals)
  platform  ops.ping jobs, claimed, run and finished by the job engine; submitted in process in
            batches of 100 (the api's cost is `make bench`'s end-to-end figure, not this one)

Rounds alternate the three, and each figure is the median round. Worker CPU is measured on the
worker's own process tree (its pool children, reaped ones included), so what else runs on the
machine is not in it; PostgreSQL's and Redis's CPU are of every such process on the machine.
`--profile` samples the pool children of one platform drain with py-spy (idle waits included:
the cycle waits on round trips more than it computes) and prints where the wall time went. Writes bench/results/worker.json.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psutil

from bench.run import BENCH_DB, BENCH_REDIS, ENV, RESULTS, setup_environment

IDLE = ["--idle"] if os.environ.get("BENCH_PROFILE_IDLE", "1") == "1" else []
IDLE_QUEUE = "bench_idle"  # what a worker consumes until the bench hands it the full queue


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children, the exited ones it reaped included."""
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass
    return total


def own_cpu(pid: int) -> float:
    """CPU seconds of the process alone (a worker's main process: the consumer, not its pool)."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def servers_cpu() -> collections.Counter:
    spent: collections.Counter = collections.Counter()
    for process in psutil.process_iter(["name"]):
        name = process.info["name"] or ""
        family = "postgres" if name.startswith("postgres") else "redis" if name.startswith("redis") else None
        if family:
            try:
                times = process.cpu_times()
                spent[family] += times.user + times.system
            except psutil.Error:
                pass
    return spent


class PlainWorker:
    """`celery -A bench.raw_celery worker`, prefork 2, on `queue` (the idle one by default)."""

    def __init__(self, queue: str = IDLE_QUEUE):
        from bench import raw_celery
        from tests.support import free_port

        self.app = raw_celery.app
        self.hostname = f"bench-plain-{uuid.uuid4().hex[:6]}@localhost"
        self.log = Path(f"/tmp/bench-plain-{free_port()}.log")
        self.proc = None
        self.queue = queue

    def start(self) -> "PlainWorker":
        from tests.support import wait_until

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.raw_celery", "worker", "--concurrency", "2", "--pool",
             "prefork", "--queues", self.queue, "--hostname", self.hostname, "--loglevel", "WARNING",
             "--without-mingle", "--without-gossip"],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, cwd=Path(__file__).parent.parent)
        try:
            wait_until(lambda: self.app.control.ping(destination=[self.hostname], timeout=0.5), timeout=60,
                       message="the plain worker")
        except AssertionError:
            self.stop()  # not left behind to consume the next run's queue
            raise
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(30)


def drain(worker_pid: int, control_app, hostname: str, queue: str, done, units: int, profile: str | None = None) -> dict:
    """Hand the worker `queue` (already full) and measure until `done()` says it is drained."""
    from tests.support import wait_until

    spies = []
    if profile:
        spy = str(Path(sys.executable).parent / "py-spy")
        children = [psutil.Process(worker_pid), *psutil.Process(worker_pid).children(recursive=True)]
        (RESULTS / "profiles").mkdir(parents=True, exist_ok=True)
        spies = [subprocess.Popen([spy, "record", *IDLE, "--rate", "250", "--pid", str(child.pid), "--format", "raw",
                                   "--duration", "8", "--output", str(RESULTS / "profiles" / f"{profile}-{child.pid}.txt")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for child in children]
        time.sleep(1.0)
    cpu, main, servers, started = tree_cpu(worker_pid), own_cpu(worker_pid), servers_cpu(), time.monotonic()
    control_app.control.add_consumer(queue, destination=[hostname], reply=True, timeout=5)
    wait_until(done, timeout=900, interval=0.05, message=f"{queue} to drain")
    seconds = time.monotonic() - started
    worker_ms = (tree_cpu(worker_pid) - cpu) * 1000 / units
    main_ms = (own_cpu(worker_pid) - main) * 1000 / units
    spent = servers_cpu() - servers
    control_app.control.cancel_consumer(queue, destination=[hostname], reply=True, timeout=5)
    for spy in spies:
        spy.wait(30)
    return {"units": units, "seconds": round(seconds, 3), "per_second": round(units / seconds, 1),
            "worker_cpu_ms": round(worker_ms, 3), "worker_main_cpu_ms": round(main_ms, 3),
            "postgres_cpu_ms": round(spent["postgres"] * 1000 / units, 3),
            "redis_cpu_ms": round(spent["redis"] * 1000 / units, 3)}


class Bench:
    def __init__(self, n: int):
        from shared.redis_clients import cache_redis
        from tests.support import create_user, flush_redis, reset_schema

        self.n = n
        reset_schema()
        flush_redis()
        self.user = create_user(f"bench-worker-{uuid.uuid4().hex[:6]}@example.com", role="admin")
        self.redis = cache_redis()

    def plain(self, worker: PlainWorker) -> dict:
        from bench import raw_celery

        key = f"bench:plain:{uuid.uuid4().hex}"
        counter = __import__("redis").Redis.from_url(raw_celery.COUNTER_URL)
        with raw_celery.app.producer_or_acquire() as producer:
            for _ in range(self.n):
                raw_celery.app.send_task("bench.plain_noop", args=[key], queue=raw_celery.QUEUE, producer=producer)
        return drain(worker.proc.pid, raw_celery.app, worker.hostname, raw_celery.QUEUE,
                     lambda: int(counter.get(key) or 0) >= self.n, self.n)

    def project(self, worker) -> dict:
        from shared.celery_app import app

        key = f"bench:raw:{uuid.uuid4().hex}"
        with app.producer_or_acquire() as producer:
            for _ in range(self.n):
                app.send_task("bench.raw_noop", args=[key], queue="maintenance", producer=producer)
        return drain(worker.proc.pid, app, worker.hostname, "maintenance",
                     lambda: int(self.redis.get(key) or 0) >= self.n, self.n)

    def platform(self, worker, profile: str | None = None) -> dict:
        from shared import db
        from shared.celery_app import app
        from shared.jobs import BatchItem, dispatch_batch, submit_batch
        from shared.models import Job, User
        from shared.settings import get_settings
        from tests.support import truncate_jobs

        truncate_jobs()
        settings = get_settings()
        for start in range(0, self.n, 100):
            with db.session_scope() as session:
                user = session.get(User, self.user.id)
                outcomes = submit_batch(session=session, user=user, settings=settings,
                                        items=[BatchItem(type="ops.ping", params={})] * min(100, self.n - start))
                dispatch_batch(session, outcomes)

        def finished() -> bool:
            with db.session_scope() as session:
                return session.query(Job).filter(Job.status.in_(("queued", "running"))).count() == 0

        result = drain(worker.proc.pid, app, worker.hostname, "maintenance", finished, self.n, profile=profile)
        with db.session_scope() as session:
            counts = dict(session.query(Job.status, __import__("sqlalchemy").func.count()).group_by(Job.status).all())
        if counts != {"succeeded": self.n}:
            raise RuntimeError(f"the platform's jobs did not all succeed: {counts}")
        return result


# Stages of the per-job cycle, by the frames a sample's stack holds: the first that matches wins.
STAGES = (
    ("status cache (Redis: mark, entry, wake-up)", ("(shared/jobs/status_cache.py",)),
    ("notifications hook", ("job_finished (", "kick (")),
    ("claim (one UPDATE)", ("claim_job (",)),
    ("finish (UPDATE, COMMIT)", ("succeed_job (",)),
    ("task body (ops.ping)", ("(workers/ops.py",)),
    ("session open/close, metrics", ("run_job (",)),
    ("log lines", ("(logging/__init__.py",)),
    ("task events (Flower)", ("EventDispatcher",)),
    ("ack", ("Message.ack (", "QoS.ack (")),
    ("receive a message (BRPOP)", ("_brpop_read (",)),
    ("hand to / back from the pool", ("ResultHandler", "_write_job", "schedule_writes", "on_result_readable")),
    ("waiting for work", ("_recv (", "poll (", "select (", "Condition.wait", "Event.wait")),
    ("Celery tracer and signals", ("trace.py",)),
)


def stage_profile(files: list[Path]) -> list[tuple[str, float]]:
    """Share of the samples (wall time, waits included) in each stage of the cycle."""
    spent: collections.Counter = collections.Counter()
    total = 0
    for path in files:
        for line in path.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if "heartbeats" in stack or "socketserver" in stack:  # the metrics and heartbeat threads
                continue
            total += int(samples)
            frames = stack.split(";")
            stage = next((name for name, marks in STAGES if any(m in f for f in frames for m in marks)), "other")
            spent[stage] += int(samples)
    return [(name, round(100 * spent[name] / max(total, 1), 1)) for name, _ in (*STAGES, ("other", ()))
            if spent[name]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000, help="messages per drain")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="py-spy the pool children of one platform drain")
    parser.add_argument("--only", choices=("plain", "project", "platform"), action="append")
    args = parser.parse_args()
    setup_environment()
    os.environ["TEST_DATABASE_URL"], os.environ["TEST_REDIS_URL"] = BENCH_DB, BENCH_REDIS
    from tests.preflight import main as preflight
    from tests.support import WorkerProcess

    if preflight():
        return 2
    bench = Bench(args.jobs)
    kinds = args.only or ["plain", "project", "platform"]
    rounds: dict[str, list[dict]] = {kind: [] for kind in kinds}
    plain = PlainWorker().start() if "plain" in kinds else None
    ours = WorkerProcess(env=ENV, queues=IDLE_QUEUE, concurrency=2).start() if set(kinds) - {"plain"} else None
    try:
        if args.profile and shutil.which(str(Path(sys.executable).parent / "py-spy")) is None:
            raise SystemExit("--profile needs py-spy: pip install -e '.[bench]'")
        for round_ in range(args.rounds):
            for kind in kinds:
                if kind == "plain":
                    measured = bench.plain(plain)
                elif kind == "project":
                    measured = bench.project(ours)
                else:
                    measured = bench.platform(ours, profile="worker-platform" if args.profile and round_ == 0 else None)
                rounds[kind].append(measured)
                print(f"[bench.worker] round {round_ + 1} {kind}: {measured}", flush=True)
    finally:
        if plain:
            plain.stop()
        if ours:
            ours_pid = ours.proc.pid
            ours.stop()
    figures = {kind: {key: statistics.median(r[key] for r in measured) for key in measured[0]}
               for kind, measured in rounds.items()}
    results = {"finished_at": datetime.now(timezone.utc).isoformat(), "jobs": args.jobs, "rounds": rounds,
               "medians": figures, "load_average": os.getloadavg()}
    if "platform" in figures:
        for base in ("plain", "project"):
            if base in figures:
                results[f"platform_vs_{base}"] = round(figures["platform"]["per_second"] / figures[base]["per_second"], 3)
    if not args.only:
        (RESULTS / "worker.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "rounds"}, indent=2))
    if args.profile:
        files = sorted((RESULTS / "profiles").glob("worker-platform-*.txt"), key=lambda p: p.stat().st_size)
        main_pid = ours_pid
        for title, chosen in (("the main process", [p for p in files if p.stem.endswith(f"-{main_pid}")]),
                              ("the pool processes", [p for p in files if not p.stem.endswith(f"-{main_pid}")])):
            print(f"\nper-job cycle, {title} (share of wall-time samples):")
            for stage, share in stage_profile(chosen):
                print(f"  {share:5.1f}%  {stage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
