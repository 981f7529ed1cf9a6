"""gunicorn settings of the events process: the same app under gevent, for held connections.

SSE streams (GET /v1/jobs/{id}/events) and long-polls (?wait=) spend most of their life
waiting; under gevent each is a greenlet, so thousands cost memory, not threads. nginx
sends those two routes here and everything else to the threaded web process.
"""
# First, before anything else of ours is imported: make the standard library cooperative
# (sockets, threading, time.sleep), and psycopg2, which waits in C unless told how to yield.
from gevent import monkey

monkey.patch_all()

from psycogreen.gevent import patch_psycopg  # noqa: E402

patch_psycopg()

import os  # noqa: E402

from shared.settings import get_settings, given_values, refuse_to_start_on_problems  # noqa: E402

settings = get_settings()
worker_connections = settings.events_worker_connections
given = set(given_values())
# Held connections per process: below worker_connections, so a full house still has room to
# answer a 429 or a /health. Short reads only (a stream ends its transaction before it waits):
# a small database pool is plenty.
if "MAX_HELD_CONNECTIONS" not in given:
    os.environ["MAX_HELD_CONNECTIONS"] = str(worker_connections - 200)
if not ({"DB_POOL_SIZE", "DATABASE_POOL_SIZE"} & given):
    os.environ["DB_POOL_SIZE"] = "20"
get_settings.cache_clear()
settings = get_settings()
refuse_to_start_on_problems("events", settings)

bind = settings.events_bind or f"127.0.0.1:{settings.events_port}"
workers = settings.events_workers
worker_class = "gevent"
# Each worker imports the app itself, after gevent's patching of that worker: nothing the app
# opens (pools, the events hub's subscriber thread) is made before it is cooperative.
preload_app = False
timeout = settings.gunicorn_timeout
graceful_timeout = settings.gunicorn_graceful_timeout
keepalive = 75
accesslog = settings.gunicorn_accesslog or None
errorlog = "-"
loglevel = settings.log_level.lower()
control_socket = str(settings.data_dir / f"gunicorn-{bind.rsplit(':', 1)[-1]}.ctl")

logger_class = "shared.logging.GunicornLogger"

from shared.metrics_dir import prepare_multiprocess_dir, remove_own_multiprocess_dir  # noqa: E402

prepare_multiprocess_dir("assistant-events-metrics-")


def child_exit(server, worker):
    from shared.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server):
    remove_own_multiprocess_dir()
