"""The worker side of the job lifecycle, shared by every task.

A domain task is a plain function `body(ctx) -> dict`: `ctx.session` is its own session,
and its writes commit in the same transaction that marks the job succeeded, so a job
re-run after a worker died never applies its database effects twice. A write that must
outlive a failed job goes through `ctx.own_transaction()`; bodies open no session of
their own. A body is a few lines over a service function (tests/workers/test_task_bodies.py).

    @job_task("tasks.quick_add")
    def quick_add(ctx: JobContext) -> dict: ...
"""
from __future__ import annotations

import contextlib
import functools
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import task_unknown
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from shared import metrics
from shared.celery_app import app
from shared.db import new_session, session_scope
from shared.jobs import QUEUED, RUNNING, SUCCEEDED, claim_job, fail_job, report_progress, retry_job, succeed_job
from shared.jobtypes import JobType, get_job_type
from shared.models import Job, User

log = logging.getLogger(__name__)

# Errors of the moment: the database or Redis went away, a connection reset. Worth a retry.
TRANSIENT = (OperationalError, redis.ConnectionError, redis.TimeoutError, ConnectionError, TimeoutError)


class JobFailed(Exception):
    """Raised by a task body for a failure that a retry would not fix."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class RetryableJobError(Exception):
    """Raised by a task body for a failure worth retrying (after backoff)."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


class JobCanceled(Exception):
    """The job was canceled (or taken over) while it ran."""


@dataclass
class JobContext:
    session: Session
    job: Job
    job_type: JobType
    run_token: str

    @functools.cached_property
    def user(self) -> User:
        """The job's owner, loaded on first use (many jobs never need it)."""
        return self.session.get(User, self.job.user_id)

    @property
    def params(self) -> dict:
        return self.job.params or {}

    @property
    def attempt(self) -> int:
        return self.job.attempts

    @contextlib.contextmanager
    def own_transaction(self) -> Iterator[Session]:
        """A session beside the job's, committed on leaving: for writes that must stay whatever
        becomes of the job (tokens spent, a call made to Google). The one way a body opens one."""
        with session_scope() as session:
            yield session

    def progress(self, percent: int, message: str | None = None) -> None:
        """Report progress, visible at once to polling apps; raises JobCanceled if canceled."""
        if not report_progress(session=self.session, make_session=new_session, job_id=self.job.id,
                               run_token=self.run_token, percent=percent, message=message):
            raise JobCanceled()


def backoff_seconds(attempt: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff with full jitter (attempt 1 -> up to 2 s, 2 -> 4 s, ...)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


# The body of each job type's task, by type name: one each (tests/shared/test_registry.py).
BODIES: dict[str, Callable[[JobContext], dict]] = {}


def job_task(type_name: str) -> Callable[[Callable[[JobContext], dict]], object]:
    """Register `body` as the Celery task of job type `type_name`, with its limits."""
    job_type = get_job_type(type_name)
    if job_type is None:
        raise LookupError(f"{type_name} is not in shared.jobtypes.REGISTRY")

    def decorator(body: Callable[[JobContext], dict]):
        if BODIES.setdefault(type_name, body) is not body:
            # A second task under the same name would silently replace the first.
            raise LookupError(f"{type_name} already has a task: {BODIES[type_name].__qualname__}")
        @app.task(
            name=job_type.task_name,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            soft_time_limit=job_type.soft_time_limit,
            time_limit=job_type.time_limit,
            ignore_result=True,
            max_retries=5,
        )
        def task(self, job_id: str):
            try:
                run_job(body, job_type=job_type, job_id=uuid.UUID(job_id), run_token=self.request.id)
            except TRANSIENT as exc:
                # The job's state itself could not be written: put the same message back
                # later. Same task id, so the claim below recognizes it as this run.
                log.warning("job %s: database or Redis unavailable, retrying: %s", job_id, exc)
                raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries + 1, cap=60))

        task.body = body
        return task

    return decorator


@task_unknown.connect
def _fail_job_without_task(sender=None, name: str | None = None, id: str | None = None,  # noqa: A002
                           message=None, **_kwargs) -> None:
    """A job whose type this worker has no task for fails, naming why.

    Celery drops such a message; the job would stay queued and the sweeper resend it
    forever. (A registered type always has a task: this is a worker older than its api.)
    """
    if not (name or "").startswith("jobs."):
        return
    try:
        job_id = uuid.UUID(message.payload[0][0])
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        log.error("unknown task %s with a message that names no job", name)
        return
    log.error("job %s: no task %s on this worker; failing it", job_id, name)
    with new_session() as session:
        fail_job(session=session, job_id=job_id, run_token=id, code="no_worker",
                 message=f"No worker runs {name.removeprefix('jobs.')} jobs here; the operators have the details.")


def run_job(body: Callable[[JobContext], dict], *, job_type: JobType, job_id: uuid.UUID, run_token: str) -> str:
    """Claim, run and finish one job; returns the status it ended in (or why it did not run)."""
    # One session for the whole job: the claim, the body's reads and writes, and the finish.
    session = new_session()
    try:
        claimed, job = claim_job(session=session, job_id=job_id, run_token=run_token)
        if claimed != RUNNING:
            return claimed
        metrics.JOBS_STARTED.labels(job_type.name).inc()
        started = time.monotonic()
        outcome = _run_claimed(body, session=session, job_type=job_type, job=job, run_token=run_token)
    finally:
        session.close()
    if outcome in (SUCCEEDED, "failed", QUEUED):
        metrics.JOB_RUN_SECONDS.labels(job_type.name).observe(time.monotonic() - started)
    if outcome in (SUCCEEDED, "failed"):
        metrics.JOBS_FINISHED.labels(job_type.name, outcome).inc()
    elif outcome == QUEUED:
        metrics.JOB_RETRIES.labels(job_type.name).inc()
    return outcome


def _run_claimed(body: Callable[[JobContext], dict], *, session: Session, job_type: JobType, job: Job,
                 run_token: str) -> str:
    """Run the body of a claimed job in `session` and record how it ended."""
    job_id = job.id
    ctx = JobContext(session=session, job=job, job_type=job_type, run_token=run_token)
    try:
        result = body(ctx)
    except JobCanceled:
        session.rollback()
        return "canceled"
    except JobFailed as exc:
        session.rollback()
        fail_job(session=session, job_id=job_id, run_token=run_token, code=exc.code, message=exc.message)
        return "failed"
    except SoftTimeLimitExceeded:
        session.rollback()
        fail_job(session=session, job_id=job_id, run_token=run_token, code="timed_out",
                 message=f"The job ran longer than its {job_type.soft_time_limit} s limit.")
        return "failed"
    except (RetryableJobError, *TRANSIENT) as exc:
        session.rollback()
        # (SQLAlchemy errors carry a .code of their own, a link id: not ours to show.)
        code = exc.code if isinstance(exc, RetryableJobError) else "transient_error"
        delay = getattr(exc, "retry_after", None) or backoff_seconds(job.attempts)
        return retry_job(session=session, job=job, run_token=run_token, code=code, message=str(exc), delay=delay)
    except Exception:
        session.rollback()
        log.exception("job %s (%s) crashed", job_id, job_type.name)
        fail_job(session=session, job_id=job_id, run_token=run_token, code="internal_error",
                 message="The job failed unexpectedly; the operators have the details.")
        return "failed"

    if not succeed_job(session=session, job=job, run_token=run_token, result=result):
        return "superseded"  # canceled or taken over meanwhile: the body's writes went with it
    return SUCCEEDED
