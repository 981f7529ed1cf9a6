"""Every change of a job's state, one function each, used by the api, the admin, the CLI and
the worker alike.

States: queued -> running -> succeeded | failed | canceled; a retry goes back to queued
with attempts kept. Every transition is a conditional UPDATE on (status, run_token), so
two actors racing on one job (a redelivered message and the sweeper, a cancel and a
finishing worker) cannot both win. Each one commits, bringing along the job's cached
status, its long-polls' wake-up and any message, push or revoke (shared.jobs.outbox).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import String, bindparam, case, cast, func, literal, select, text, update
from sqlalchemy.orm import Session

from shared import metrics, notifications
from shared.db import is_postgres
from shared.errors import JobFinished, JobNotQueued
from shared.jobs import status_cache, wakeups
from shared.jobs.send import Sending, revoke, send_job
from shared.jobs.states import ACTIVE, CANCELED, FAILED, QUEUED, RUNNING, SUCCEEDED
from shared.models import Job, User, utcnow
from shared.settings import Settings, get_settings


def expiry(now: datetime, settings: Settings | None = None) -> datetime:
    """When a job finished at `now` is deleted with its result."""
    return now + timedelta(days=(settings or get_settings()).job_result_ttl_days)


# -- by a user, an admin or an operator ---------------------------------------------------


def cancel_job(*, session: Session, job: Job, reason: str = "Canceled at the user's request.") -> bool:
    """Cancel `job` and commit; a running one is revoked after the commit. Returns whether it was running."""
    now = utcnow()
    session.refresh(job, with_for_update=is_postgres(session))
    was_running = job.status == RUNNING
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status.in_(ACTIVE))
        .values(status=CANCELED, finished_at=now, updated_at=now, expires_at=expiry(now),
                error_code="canceled", error_message=reason)
    )
    if result.rowcount == 0:
        session.rollback()
        raise JobFinished("job_finished", f"The job already finished with status {job.status!r}.")
    status_cache.track(session, [job.id])
    if was_running:
        revoke(session, job.run_token)
    session.commit()
    session.refresh(job)
    return was_running


def resend_job(*, session: Session, job: Job) -> Sending:
    """Send a queued job's message again under a new run_token (the old message becomes stale); commits.

    Compare-and-set on the status: a worker that claimed it meanwhile keeps it (JobNotQueued).
    """
    token, now = str(uuid.uuid4()), utcnow()
    changed = session.execute(
        update(Job).where(Job.id == job.id, Job.status == QUEUED)
        .values(run_token=token, enqueued_at=now, updated_at=now)
    ).rowcount
    if not changed:
        session.rollback()
        session.refresh(job)
        raise JobNotQueued("job_not_queued", f"Only queued jobs are resent; this one is {job.status}.")
    status_cache.track(session, [job.id], changed=False)
    sending = send_job(session, job.id, token, type_name=job.type)
    session.commit()
    session.refresh(job)
    return sending


# -- by the sweeper -------------------------------------------------------------------------


def resend_lost(*, session: Session, job_id, run_token: str, type_name: str, requeue: bool = False) -> bool:
    """Give a job whose message was lost (or, `requeue`, whose worker died while running it) a
    new run_token and send it again, if `run_token` still owns it; commits."""
    new_token = str(uuid.uuid4())
    # enqueued_at is set now, not after sending: an unset one would make the job look
    # unsent to a second sweeper while this one is still sending it.
    values = {"run_token": new_token, "enqueued_at": utcnow(), "updated_at": utcnow()}
    if requeue:
        values |= {"status": QUEUED, "progress_message": "Requeued after the worker was lost."}
    changed = bool(session.execute(
        update(Job).where(Job.id == job_id, Job.run_token == run_token, Job.status == (RUNNING if requeue else QUEUED))
        .values(**values)
    ).rowcount)
    status_cache.track(session, [job_id], changed=changed)
    if changed:
        send_job(session, job_id, new_token, type_name=type_name)
    session.commit()
    return changed


# -- by the worker --------------------------------------------------------------------------


def fail_job(*, session: Session, job_id, run_token: str, code: str, message: str) -> bool:
    """Mark a running or queued job failed, if `run_token` still owns it; commits (with its push and webhooks)."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.run_token == run_token, Job.status.in_(ACTIVE))
        .values(status=FAILED, error_code=code, error_message=message[:2000],
                finished_at=now, updated_at=now, expires_at=expiry(now))
    )
    if result.rowcount:
        # The failure's push and webhooks commit with it (shared.notifications).
        notifications.kick(session, notifications.job_finished(session=session, job_id=job_id))
    status_cache.track(session, [job_id], changed=bool(result.rowcount))
    session.commit()
    return bool(result.rowcount)


def _relaxed_commit(session: Session) -> None:
    """Let this transaction commit without waiting for its WAL flush (PostgreSQL).

    Only for writes the lifecycle can lose in a database crash: a lost claim or progress
    leaves the job queued (or running) under the same token, which the redelivered
    message or the sweeper takes up again. Results and effects always commit durably.
    """
    if is_postgres(session):
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))


# The hot path's statements, built once: building one (and its cache key) costs more CPU than
# the round trip that runs it. Their values are bound at each call.
_CLAIM = (
    update(Job)
    .where(Job.id == bindparam("b_job_id"), Job.run_token == bindparam("b_run_token"), Job.status == QUEUED)
    .values(status=RUNNING, attempts=Job.attempts + 1, started_at=bindparam("b_now"), updated_at=bindparam("b_now"),
            progress=0,
            progress_message=case((Job.attempts == 0, None),
                                  else_=literal("Attempt ") + cast(Job.attempts + 1, String)
                                  + " of " + cast(Job.max_attempts, String)))
    .returning(Job)
    .execution_options(synchronize_session=False)
)
# The same, committing by itself without waiting for its WAL flush (see claim_job).
_CLAIM_ALONE = _CLAIM.where(func.set_config("synchronous_commit", "off", True).is_not(None))

_jobs = Job.__table__
_SUCCEED = (
    update(_jobs)
    .where(_jobs.c.id == bindparam("b_job_id"), _jobs.c.run_token == bindparam("b_run_token"), _jobs.c.status == RUNNING)
    .values(status=SUCCEEDED, result=bindparam("b_result"), progress=100, finished_at=bindparam("b_now"),
            updated_at=bindparam("b_now"), expires_at=bindparam("b_expires_at"), error_code=None, error_message=None)
    # Whether anyone is to be told, in the same round trip (shared.notifications.job_finished).
    .returning(*_jobs.c, select(User.has_notification_targets).where(User.id == _jobs.c.user_id)
               .scalar_subquery().label("owner_has_targets"))
)


def claim_job(*, session: Session, job_id: uuid.UUID, run_token: str) -> tuple[str, Job | None]:
    """Move the job to running for this message and commit, or say why this message must not run it."""
    now = utcnow()
    # The usual case in one statement: the job is queued under this message's token.
    alone = is_postgres(session) and not session.in_transaction()
    if alone:
        # On PostgreSQL, one round trip: the statement commits by itself (autocommit), and
        # set_config, local to its transaction, lets that commit skip the WAL flush as
        # _relaxed_commit would. (No BEGIN, SET LOCAL and COMMIT around it: three fewer.)
        # The status cache's mark goes before it, since the statement is its commit.
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        change = status_cache.track(session, [job_id])
    else:
        _relaxed_commit(session)
    job = session.scalars(_CLAIM_ALONE if alone else _CLAIM,
                          {"b_job_id": job_id, "b_run_token": run_token, "b_now": now}).one_or_none()
    if job is None:
        if alone:
            # Nothing changed, but the mark has taken the cached entry's ETag: put the row back
            # as it stands (read at this "commit"), as a writer would, without a wake-up.
            change.changed = False
            session.commit()
        else:
            session.rollback()
        return _claim_again(session, job_id, run_token, now)
    if alone:
        change.returned = [job]
    else:
        status_cache.track(session, [job_id], returned=[job])
    session.commit()
    _claimed(job, now)
    return RUNNING, job


def _claim_again(session: Session, job_id: uuid.UUID, run_token: str, now) -> tuple[str, Job | None]:
    """The rest: a message redelivered after its worker died, or one that must not run."""
    _relaxed_commit(session)
    query = session.query(Job).filter(Job.id == job_id)
    job = (query.with_for_update() if is_postgres(session) else query).one_or_none()
    if job is None:
        session.rollback()
        return "missing", None
    if job.run_token != run_token:
        session.rollback()
        return "stale", None  # the sweeper or a retry sent a newer message
    if job.status != RUNNING:
        session.rollback()
        return job.status, None  # a duplicate delivery of a finished job
    if job.attempts >= job.max_attempts:
        # The same message came back after each worker that took it died: stop here.
        session.rollback()
        fail_job(session=session, job_id=job_id, run_token=run_token, code="worker_lost",
                 message=f"The worker running this job died {job.attempts} times.")
        return "failed", None
    job.attempts += 1
    job.started_at = now
    job.updated_at = now
    job.progress = 0
    job.progress_message = f"Attempt {job.attempts} of {job.max_attempts}"
    session.flush()  # the change must be in the row that the status cache reads
    status_cache.track(session, [job_id])
    session.commit()
    _claimed(job, now)
    return RUNNING, job


def _claimed(job: Job, now) -> None:
    if job.enqueued_at is not None:
        metrics.JOB_QUEUE_WAIT.labels(job.queue).observe(max(0.0, (now - job.enqueued_at).total_seconds()))


def report_progress(*, session: Session, make_session, job_id, run_token: str, percent: int,
                    message: str | None) -> bool:
    """Record a running job's progress, visible at once to polling apps; False if it is no
    longer this run's (canceled or taken over).

    `session` is the body's own; `make_session` opens a second one, for PostgreSQL, so the
    progress commits at once without committing the body's writes.
    """
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.run_token == run_token, Job.status == RUNNING)
        .values(progress=max(0, min(100, int(percent))), progress_message=message, updated_at=utcnow())
    )
    if session.in_transaction() and not is_postgres(session):
        # SQLite: the body's open transaction holds the one write lock, so a second
        # session would wait out the busy timeout and fail. Write through the body's
        # own: the progress shows when the job commits, but the job does not stall.
        changed = bool(session.execute(stmt).rowcount)
        if changed:
            wakeups.wake(job_id)  # (its commit, and so its cached status, come with the job's)
        return changed
    with make_session() as own:
        _relaxed_commit(own)
        changed = bool(own.execute(stmt).rowcount)
        status_cache.track(own, [job_id], changed=changed)
        own.commit()
    return changed


def succeed_job(*, session: Session, job: Job, run_token: str, result: dict) -> bool:
    """Mark the job succeeded with `result`, if `run_token` still owns it, and commit it with the
    body's own writes (and its push and webhooks); False (rolled back) if it was canceled or taken over."""
    now = utcnow()
    finished = session.execute(_SUCCEED, {"b_job_id": job.id, "b_run_token": run_token, "b_result": result, "b_now": now,
                                          "b_expires_at": expiry(now)}).one_or_none()
    if finished is None:
        # Canceled or taken over meanwhile: the body's writes go with it.
        session.rollback()
        return False
    notifications.kick(session, notifications.job_finished(session=session, job_id=job.id, succeeded_job=job,
                                                           targets=finished.owner_has_targets))
    status_cache.track(session, [job.id], returned=[finished])
    session.commit()
    return True


def retry_job(*, session: Session, job: Job, run_token: str, code: str, message: str, delay: float) -> str:
    """Queue the job again in `delay` seconds (or fail it past its attempts); commits. Returns its new status."""
    if job.attempts >= job.max_attempts:
        fail_job(session=session, job_id=job.id, run_token=run_token, code=code,
                 message=f"{message} (gave up after {job.attempts} attempts)")
        return FAILED
    new_token = str(uuid.uuid4())
    result = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.run_token == run_token, Job.status.in_(ACTIVE))
        .values(status=QUEUED, run_token=new_token, enqueued_at=utcnow() + timedelta(seconds=delay),
                updated_at=utcnow(),
                progress_message=f"Retrying in {delay:.0f} s: {message}"[:500])
    )
    status_cache.track(session, [job.id], changed=bool(result.rowcount))
    if result.rowcount:
        send_job(session, job.id, new_token, type_name=job.type, countdown=delay)
    session.commit()
    return QUEUED if result.rowcount else "superseded"
