"""gunicorn settings, from the settings table (the environment, then `.env`).

Threads, because `GET /v1/jobs/{id}?wait=30` holds a request open for up to 30 s and
must not hold a whole worker process.
"""
import os

from shared.settings import get_settings, given_values, refuse_to_start_on_problems

settings = get_settings()
# A pooled database connection for every thread, so no request opens one of its own.
if not ({"DB_POOL_SIZE", "DATABASE_POOL_SIZE"} & set(given_values())):
    os.environ["DB_POOL_SIZE"] = str(settings.gunicorn_threads)
    get_settings.cache_clear()
    settings = get_settings()

# Before anything starts: a setting that cannot work stops the api here (in the master), naming
# its variable. create_app checks again, for `gunicorn "api:create_app()"` without this file.
refuse_to_start_on_problems("api", settings)

bind = settings.bind or f"127.0.0.1:{settings.port}"
workers = settings.web_concurrency
worker_class = "gthread"
threads = settings.gunicorn_threads
timeout = settings.gunicorn_timeout  # above the longest long-poll
graceful_timeout = settings.gunicorn_graceful_timeout
keepalive = 5
max_requests = settings.gunicorn_max_requests
# Build the app once in the master and fork workers from it: a worker recycled after
# max_requests starts in milliseconds instead of re-importing everything (about 1 s of CPU
# each, which under load was a fifth of the api's CPU), and the workers share the pages.
# Connections are made lazily and per process (shared.db, shared.redis_clients check the pid).
preload_app = settings.gunicorn_preload
max_requests_jitter = 500
accesslog = settings.gunicorn_accesslog or None  # empty: no access log
errorlog = "-"
loglevel = settings.log_level.lower()
# One control socket per instance (gunicorn's default, ~/.gunicorn/gunicorn.ctl, is shared by
# every instance on the host): under DATA_DIR, named by the port.
control_socket = str(settings.data_dir / f"gunicorn-{bind.rsplit(':', 1)[-1]}.ctl")
if settings.max_held_connections >= threads:
    # Held polls and streams could take every thread, and nothing else would be answered.
    raise SystemExit(f"MAX_HELD_CONNECTIONS={settings.max_held_connections} must be below the gunicorn threads "
                     f"({threads}, GUNICORN_THREADS): held connections would leave no thread for other requests")

# Error and access logs as structured lines, the access line with the request's id.
logger_class = "shared.logging.GunicornLogger"

# Metrics from every worker process, merged on each scrape of /metrics: the directory is
# chosen (and emptied) here in the master, before any worker creates a metric.
from shared.metrics_dir import prepare_multiprocess_dir, remove_own_multiprocess_dir  # noqa: E402

prepare_multiprocess_dir("assistant-api-metrics-")


def on_starting(server):
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # for the control socket


def child_exit(server, worker):
    from shared.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server):
    remove_own_multiprocess_dir()
