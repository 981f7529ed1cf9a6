"""Prometheus metrics, by the names operators and dashboards rely on.

Every process defines the same objects; how they are exposed (the api's /metrics,
worker ports or the multiprocess directory) is the exposition's business, not the
code that counts.
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from shared.metrics_dir import multiprocess_dir

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["method", "endpoint", "status"])
HTTP_REQUEST_DURATION = Histogram("http_request_duration_seconds", "HTTP request latency", ["method", "endpoint"])

JOBS_SUBMITTED = Counter("jobs_submitted_total", "Jobs accepted by the api", ["type"])
JOBS_FINISHED = Counter("jobs_finished_total", "Jobs that reached a terminal state", ["type", "status"])
JOB_RUN_SECONDS = Histogram(
    "job_run_seconds", "Time from a job's start to its end on a worker", ["type"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
)
JOB_QUEUE_WAIT = Histogram(
    "job_queue_wait_seconds", "Time a job waited in its queue before a worker started it", ["queue"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
# Sampled from the broker at scrape time (sample_queue_depths); with several processes
# the most recent sample is the truth, not the largest.
QUEUE_DEPTH = Gauge("queue_depth", "Messages waiting in each queue", ["queue"], multiprocess_mode="mostrecent")

DB_REPLICA_FALLBACKS = Counter("db_replica_fallbacks_total", "Reads meant for a replica that went to the primary",
                               ["reason"])  # down | lag | read_after_write
DB_REPLICA_LAG = Gauge("db_replica_lag_seconds", "Each replica's replay lag as last measured", ["replica"],
                       multiprocess_mode="max")
AI_AGENT_CALLS = Counter("ai_agent_calls_total", "Calls to the AI provider", ["agent_type", "status"])
AI_TOKENS = Counter("ai_tokens_total", "AI tokens used", ["agent_type", "kind"])  # kind: prompt | completion
GOOGLE_API_CALLS = Counter("google_api_calls_total", "Calls to Google APIs", ["api", "status"])
# status: sent | retry | removed (the device was gone) | failed
NOTIFICATIONS_SENT = Counter("notifications_sent_total", "Push attempts by channel and outcome",
                             ["channel", "status"])
# status: succeeded | retry | failed (gave up) | refused (the URL turned unsafe)
WEBHOOK_DELIVERIES = Counter("webhook_deliveries_total", "Webhook delivery attempts by outcome", ["status"])
# A row the notification tick could not queue (it is skipped, the rest of the tick goes on).
TICK_ROW_FAILURES = Counter("notification_tick_row_failures_total",
                            "Rows the notification tick failed to requeue, by kind", ["kind"])

# -- added for operations: the worker's own lifecycle and the scheduler's heartbeat ----------

JOBS_STARTED = Counter("jobs_started_total", "Jobs a worker claimed and started", ["type"])
JOB_RETRIES = Counter("job_retries_total", "Job attempts that ended in a retry", ["type"])
CELERY_TASKS = Counter("celery_tasks_total", "Celery tasks run by workers, by outcome", ["task", "outcome"])
SCHEDULER_LAST_TICK = Gauge(
    "scheduler_last_tick_timestamp_seconds",
    "Unix time a periodic task sent by beat last started on a worker", ["task"], multiprocess_mode="max",
)

# -- added for operators' alerts: the database pool, backups, who is using it ----------------

# Kept by every process on its own pool's events; summed over the live processes.
DB_POOL_IN_USE = Gauge("db_pool_connections_in_use", "Database connections checked out of the pool",
                       ["database"], multiprocess_mode="livesum")
DB_POOL_OVERFLOW = Gauge("db_pool_overflow_connections", "Connections in use beyond the pool's size (each opened "
                         "for the request and closed again)", ["database"], multiprocess_mode="livesum")
DB_POOL_SIZE = Gauge("db_pool_size", "Connections the pools keep open (DB_POOL_SIZE per process)", ["database"],
                     multiprocess_mode="livesum")
# Read from the database and Redis by the api at scrape time (0: never).
BACKUP_LAST_SUCCESS = Gauge("backup_last_success_timestamp_seconds", "Unix time of the newest backup",
                            ["storage"], multiprocess_mode="mostrecent")
BACKUP_LAST_VERIFIED = Gauge("backup_last_verified_timestamp_seconds",
                             "Unix time of the last verification that passed", ["storage"],
                             multiprocess_mode="mostrecent")
BACKUP_VERIFICATION_FAILED = Gauge("backup_last_verification_failed",
                                   "1 when the most recent backup verification failed", ["storage"],
                                   multiprocess_mode="mostrecent")
ACTIVE_USERS = Gauge("active_users", "Distinct users who made an authenticated request in the last 15 minutes",
                     ["window"], multiprocess_mode="mostrecent")


# -- exposition ----------------------------------------------------------------------------

def registry():
    """The registry to expose: every process's values when PROMETHEUS_MULTIPROC_DIR is set
    (gunicorn workers, Celery pool children), else this process's own."""
    if multiprocess_dir():
        collected = CollectorRegistry()
        multiprocess.MultiProcessCollector(collected)
        return collected
    return REGISTRY


def exposition() -> tuple[bytes, str]:
    """(body, content type) of a scrape, with the queue depths sampled just now."""
    sample_queue_depths()
    return generate_latest(registry()), CONTENT_TYPE_LATEST


def queue_keys(queue: str) -> list[str]:
    """The Redis lists holding `queue`'s messages: kombu keeps one list per priority step."""
    return [queue] + [f"{queue}\x06\x16{step}" for step in (1, 2, 3, 4, 5, 6, 7, 8, 9)]


def sample_queue_depths(broker_url: str | None = None) -> dict[str, int] | None:
    """LLEN of every queue on the broker into QUEUE_DEPTH; None when the broker does not answer."""
    import redis

    from shared.jobtypes import QUEUES
    from shared.settings import get_settings

    url = broker_url or get_settings().broker_url
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                for key in queue_keys(queue):
                    pipe.llen(key)
            lengths = pipe.execute()
    except redis.RedisError as exc:
        log.warning("queue depths not sampled: %s", exc)
        return None
    finally:
        client.close()
    per_queue = len(queue_keys(QUEUES[0]))
    depths = {queue: sum(lengths[i * per_queue:(i + 1) * per_queue]) for i, queue in enumerate(QUEUES)}
    for queue, depth in depths.items():
        QUEUE_DEPTH.labels(queue).set(depth)
    return depths


def mark_process_dead(pid: int) -> None:
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


class _ScrapeHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] not in ("/metrics", "/"):
            self.send_error(404)
            return
        try:
            body, content_type = exposition()
        except Exception:
            log.exception("metrics exposition failed")
            self.send_error(500)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):  # scrapes every 15 s would drown the worker's log
        pass


def start_metrics_server(port: int, address: str = "0.0.0.0") -> ThreadingHTTPServer | None:
    """Serve /metrics from a daemon thread of this process (the Celery worker's main process)."""
    try:
        server = ThreadingHTTPServer((address, port), _ScrapeHandler)
    except OSError as exc:
        log.warning("worker metrics not served on %s:%s: %s", address, port, exc)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True).start()
    log.info("worker metrics on http://%s:%s/metrics", address, server.server_address[1])
    return server


def initialize_series() -> None:
    """Create every series whose labels are known in advance, at zero.

    A series that does not exist yet is absent from scrapes, so `rate()` and the alerts on
    it see nothing until the first event; created at start they read 0 instead.
    """
    from shared.jobtypes import QUEUES, REGISTRY

    for name in REGISTRY:
        JOBS_SUBMITTED.labels(name)
        JOBS_STARTED.labels(name)
        JOB_RETRIES.labels(name)
        JOB_RUN_SECONDS.labels(name)
        for status in ("succeeded", "failed"):
            JOBS_FINISHED.labels(name, status)
    for queue in QUEUES:
        JOB_QUEUE_WAIT.labels(queue)
