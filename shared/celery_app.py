"""The one Celery app, built from the same settings as the api.

`include` names the task packages as configuration: worker processes import them, the
api and beat only ever send tasks by name.
"""
from __future__ import annotations

from celery import Celery, bootsteps
from celery.signals import beat_init, celeryd_init, worker_process_init
from kombu import Exchange, Queue
from kombu.common import ignore_errors

from shared import broker, db
from shared.jobtypes import QUEUES, REGISTRY, longest_time_limit
from shared.settings import Settings, get_settings, refuse_to_start_on_problems

broker.install()  # one publishing client per channel (shared.broker)


def _routes() -> dict:
    return {jt.task_name: {"queue": jt.queue} for jt in REGISTRY.values()}


def configure(app: Celery, settings: Settings) -> None:
    """Apply `settings` to `app` (tests call it again after changing the environment)."""
    # Drop (not close: kombu's registry may hand them out again for that URL) the pools
    # made for the previous broker URL.
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.update(
        broker_url=settings.broker_url,
        result_backend=None,
        task_ignore_result=True,  # job state lives in our database, not in Celery
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        enable_utc=True,
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in QUEUES],
        task_default_queue="interactive",
        task_routes=_routes(),
        # A message is acknowledged only once its job is done; a dead worker's message
        # goes back to the queue. The job's attempts cap bounds the redeliveries.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_max_tasks_per_child=1000,
        worker_concurrency=settings.worker_concurrency,
        worker_send_task_events=True,  # Flower
        # No "task-sent" events: one more broker publish on every submit, for a state
        # Flower shows anyway once the worker receives the task.
        task_send_sent_event=False,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={
            # Above the longest hard time limit, or Redis would hand a running job's
            # message to a second worker.
            "visibility_timeout": longest_time_limit() * 2 + 300,
            "socket_timeout": 5,
            "socket_connect_timeout": 3,
            # A worker on several queues empties them in the order of QUEUES (interactive
            # first) instead of round robin, so a bulk backlog never delays a user's job.
            "queue_order_strategy": "priority",
            # Each queue is four Redis lists by message priority, 0 served first; see
            # shared.jobs.fair_priority for who gets which.
            "priority_steps": [0, 3, 6, 9],
        },
        # The api publishes after its commit; a broker outage must cost it a second, not
        # a minute: the row is committed and the sweeper sends it later.
        task_publish_retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=True,
    )


# How often a worker sends Flower the task events it has gathered (and at 24, sooner).
EVENTS_FLUSH_SECONDS = 0.2


class TaskEventsInBatches(bootsteps.StartStopStep):
    """Send the task events (received, started, succeeded: what Flower shows) in batches.

    Celery publishes the events gathered in each turn of the worker's loop, so at every job
    the main process made two or three publishes to Redis, each a round trip while no message
    was handed to the pool: a fifth of its time (bench.worker --profile). Gathered for up to
    EVENTS_FLUSH_SECONDS (or 24 events) they go out as one message; Flower shows them as
    before, that much later.
    """

    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self.timer = None

    def start(self, c):
        # (Again after each reconnection: the Events step makes a new dispatcher.)
        if c.event_dispatcher is None or c.hub is None:
            return
        c.event_dispatcher.on_send_buffered = None  # no flush at every turn of the loop
        if self.timer is None:
            self.timer = c.timer.call_repeatedly(EVENTS_FLUSH_SECONDS, c._flush_events)

    def shutdown(self, c):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        ignore_errors(c, c._flush_events)  # what is gathered goes out before the dispatcher closes


def make_celery(settings: Settings | None = None) -> Celery:
    app = Celery("assistant", include=["workers", "scheduler"])
    configure(app, settings or get_settings())
    app.steps["consumer"].add(TaskEventsInBatches)
    return app


app = make_celery()


@celeryd_init.connect
def _check_worker_settings(**_kwargs) -> None:
    refuse_to_start_on_problems("worker")


@beat_init.connect
def _check_beat_settings(**_kwargs) -> None:
    refuse_to_start_on_problems("beat")


@worker_process_init.connect
def _fresh_engine_after_fork(**_kwargs) -> None:
    # Pooled connections opened in the parent must not be shared with forked children.
    db.dispose_after_fork()


# Logs with the request's context, worker metrics and Sentry, through Celery's signals.
import shared.telemetry  # noqa: E402,F401
