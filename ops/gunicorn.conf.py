"""gunicorn settings, from the environment.

Threads, because `GET /v1/jobs/{id}?wait=30` holds a request open for up to 30 s and
must not hold a whole worker process.
"""
import os

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# A pooled database connection for every thread, so no request opens one of its own.
if not (os.environ.get("DB_POOL_SIZE") or os.environ.get("DATABASE_POOL_SIZE")):
    os.environ["DB_POOL_SIZE"] = str(threads)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))  # above the longest long-poll
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "35"))
keepalive = 5
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
# Build the app once in the master and fork workers from it: a worker recycled after
# max_requests starts in milliseconds instead of re-importing everything (about 1 s of CPU
# each, which under load was a fifth of the api's CPU), and the workers share the pages.
# Connections are made lazily and per process (shared.db, shared.redis_clients check the pid).
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() not in ("0", "false", "no")
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None  # empty: no access log
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Before anything starts: a setting that cannot work stops the api here, naming its variable.
# (Read afresh: the process's cached settings must see DB_POOL_SIZE as set above.)
from shared.settings import Settings, refuse_to_start_on_problems  # noqa: E402

refuse_to_start_on_problems("api", Settings.from_env())

# Error and access logs as structured lines, the access line with the request's id.
logger_class = "shared.logging.GunicornLogger"

# Metrics from every worker process, merged on each scrape of /metrics: the directory is
# chosen (and emptied) here in the master, before any worker creates a metric.
from shared.metrics_dir import prepare_multiprocess_dir, remove_own_multiprocess_dir  # noqa: E402

prepare_multiprocess_dir("assistant-api-metrics-")


def child_exit(server, worker):
    from shared.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server):
    remove_own_multiprocess_dir()
