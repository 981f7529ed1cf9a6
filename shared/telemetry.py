"""Logs, metrics and errors of Celery processes, hooked in through Celery's signals.

- The request's context (request_id, user_id, and job_id for job tasks) travels in the
  message headers (before_task_publish) and is bound again around the task on the worker
  (task_prerun), so the worker's log lines name the HTTP request that caused them.
- The worker's main process empties PROMETHEUS_MULTIPROC_DIR before its pool forks, and
  serves every pool child's metrics on WORKER_METRICS_PORT.
- Sentry, when SENTRY_DSN is set.

This module must not import prometheus_client at import time: the multiprocess directory
has to be chosen before the first metric exists (shared.metrics is imported lazily).
"""
from __future__ import annotations

import logging
import os
import time

from celery.signals import (
    beat_init,
    before_task_publish,
    celeryd_init,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from shared.logging import bind_context, clear_context, configure_logging, current_context
from shared.metrics_dir import prepare_multiprocess_dir, remove_own_multiprocess_dir
from shared.settings import get_settings

log = logging.getLogger("shared.telemetry")

CONTEXT_HEADERS = ("request_id", "user_id", "job_id")
JOB_TASK_PREFIX = "jobs."
PERIODIC_TASK_PREFIX = "scheduler."


def init_sentry(settings=None, *, flask: bool = False, celery: bool = False) -> bool:
    """Report errors to Sentry when SENTRY_DSN is set; do nothing otherwise."""
    settings = settings or get_settings()
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration

    from shared.logging import redact_value

    integrations = [LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)]
    if flask:
        from sentry_sdk.integrations.flask import FlaskIntegration

        integrations.append(FlaskIntegration())
    if celery:
        from sentry_sdk.integrations.celery import CeleryIntegration

        integrations.append(CeleryIntegration())

    def scrub(event, _hint):
        # The same redaction as the logs: no token or password leaves for Sentry either.
        return redact_value(event)

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        integrations=integrations,
        before_send=scrub,
        shutdown_timeout=2,
    )
    return True


def _level(loglevel) -> str | int | None:
    if isinstance(loglevel, int):
        return loglevel
    return loglevel.upper() if loglevel else None


@setup_logging.connect
def _setup_logging(loglevel=None, **_kwargs) -> None:
    # Connected, so Celery leaves the root logger to us. The worker's --loglevel wins over
    # LOG_LEVEL, as an operator typing it would expect.
    configure_logging(_level(loglevel))


@celeryd_init.connect
def _worker_starting(**_kwargs) -> None:
    prepare_multiprocess_dir("assistant-worker-metrics-")
    init_sentry(celery=True)


@beat_init.connect
def _beat_starting(**_kwargs) -> None:
    init_sentry(celery=True)


@worker_ready.connect
def _worker_ready(sender=None, **_kwargs) -> None:
    from shared.metrics import SCHEDULER_LAST_TICK, initialize_series, start_metrics_server

    initialize_series()
    for name in sender.app.tasks if sender is not None else ():
        if name.startswith(PERIODIC_TASK_PREFIX):
            # 0 = "never": the alert on it fires until beat's first task runs.
            SCHEDULER_LAST_TICK.labels(name).set(0)
    port = get_settings().worker_metrics_port
    if port:
        start_metrics_server(port, get_settings().worker_metrics_address)
    if sender is not None:
        from shared import heartbeats

        heartbeats.start_for(sender)


@worker_shutdown.connect
def _worker_stopped(**_kwargs) -> None:
    from shared import heartbeats

    heartbeats.stop()
    remove_own_multiprocess_dir()


@worker_process_shutdown.connect
def _pool_child_exits(pid=None, **_kwargs) -> None:
    from shared.metrics import mark_process_dead

    mark_process_dead(pid or os.getpid())


@before_task_publish.connect
def _carry_context(headers=None, body=None, **_kwargs) -> None:
    if headers is None:
        return
    context = current_context()
    for name in CONTEXT_HEADERS:
        if context.get(name) and name not in headers:
            headers[name] = context[name]
    task = headers.get("task") or ""
    if task.startswith(JOB_TASK_PREFIX):
        args = body[0] if isinstance(body, (tuple, list)) and body else None
        if args:
            headers["job_id"] = str(args[0])  # the message's own job, not the sender's


@task_prerun.connect
def _task_starts(task_id=None, task=None, args=None, **_kwargs) -> None:
    clear_context()
    request = task.request
    values = {name: request.get(name) for name in CONTEXT_HEADERS}
    if task.name.startswith(JOB_TASK_PREFIX) and args:
        values["job_id"] = str(args[0])
    bind_context(**values, task=task.name, task_id=task_id)
    if task.name.startswith(PERIODIC_TASK_PREFIX):
        from shared.metrics import SCHEDULER_LAST_TICK

        SCHEDULER_LAST_TICK.labels(task.name).set(time.time())
    task.request._started_monotonic = time.monotonic()
    log.info("task started")


@task_postrun.connect
def _task_ends(task=None, state=None, **_kwargs) -> None:
    from shared.metrics import CELERY_TASKS

    started = getattr(task.request, "_started_monotonic", None)
    duration = round(time.monotonic() - started, 3) if started else None
    CELERY_TASKS.labels(task.name, (state or "unknown").lower()).inc()
    log.info("task finished", extra={"outcome": {"state": state, "seconds": duration}})
    clear_context()
