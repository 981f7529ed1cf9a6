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

bind = os.environ.get("EVENTS_BIND", f"127.0.0.1:{os.environ.get('EVENTS_PORT', '8001')}")
workers = int(os.environ.get("EVENTS_WORKERS", "1"))
worker_class = "gevent"
worker_connections = int(os.environ.get("EVENTS_WORKER_CONNECTIONS", "5000"))
# Held connections per process: below worker_connections, so a full house still has room to
# answer a 429 or a /health.
os.environ.setdefault("MAX_HELD_CONNECTIONS", str(worker_connections - 200))
# Short reads only (a stream ends its transaction before it waits): a small pool is plenty.
if not (os.environ.get("DB_POOL_SIZE") or os.environ.get("DATABASE_POOL_SIZE")):
    os.environ["DB_POOL_SIZE"] = "20"
# Each worker imports the app itself, after gevent's patching of that worker: nothing the app
# opens (pools, the events hub's subscriber thread) is made before it is cooperative.
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 75
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

from shared.settings import Settings, refuse_to_start_on_problems  # noqa: E402

refuse_to_start_on_problems("events", Settings.from_env())

logger_class = "shared.logging.GunicornLogger"

from shared.metrics_dir import prepare_multiprocess_dir, remove_own_multiprocess_dir  # noqa: E402

prepare_multiprocess_dir("assistant-events-metrics-")


def child_exit(server, worker):
    from shared.metrics import mark_process_dead

    mark_process_dead(worker.pid)


def on_exit(server):
    remove_own_multiprocess_dir()
