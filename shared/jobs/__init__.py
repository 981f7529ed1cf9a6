"""The job engine: every change of a job row happens in this package.

    states         the statuses, and a job as the api shows it (job_to_dict, job_etag)
    submit         submitting one job: type, admission, params, idempotency, the user's cap
    batch          many submissions in one transaction
    registry       what a job type declares (JobType) and the registry the catalogue,
                   shared.jobtypes, fills
    send           messages to the broker (and revokes) once the transaction commits
    transitions    cancel, resend, claim, progress, succeed, retry, fail: one function each
    recovery       the sweeper: lost messages, dead workers
    status_cache   each job's status in Redis, so an unchanged poll never reads the database
    wakeups        long-polls woken over Redis pub/sub
    events         live output of agent jobs: a Redis Stream per job (token, tool, action, ..., done)
    outbox         what a transaction sends, held until it commits and dropped if it rolls back

Callers outside the package use the names below (tests/test_architecture.py holds them to it).
"""
# The catalogue fills the registry, so whoever uses the engine sees every job type. (It imports
# shared.jobs.registry, a submodule: either may be imported first.)
import shared.jobtypes  # noqa: F401
from shared.errors import (
    IdempotencyConflict,
    InvalidParams,
    JobError,
    JobFinished,
    JobNotQueued,
    TooManyActiveJobs,
    Unavailable,
    UnknownJobType,
)
from shared.jobs import events, outbox, status_cache, wakeups
from shared.jobs.batch import MAX_BATCH, BatchItem, dispatch_batch, submit_batch
from shared.jobs.recovery import SweepReport, sweep
from shared.jobs.send import dispatch, send_job
from shared.jobs.states import (
    ACTIVE,
    CANCELED,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    TERMINAL,
    job_etag,
    job_to_dict,
)
from shared.jobs.submit import (
    Submitted,
    fair_priority,
    request_hash,
    resolve_job_type,
    submit_job,
    validate_params,
)
from shared.jobs.transitions import (
    cancel_job,
    claim_job,
    fail_job,
    report_progress,
    resend_job,
    retry_job,
    succeed_job,
)
from shared.jobs.wakeups import JobWaiter

__all__ = [
    "ACTIVE", "CANCELED", "FAILED", "MAX_BATCH", "QUEUED", "RUNNING", "STATUSES", "SUCCEEDED", "TERMINAL",
    "BatchItem", "IdempotencyConflict", "InvalidParams", "JobError", "JobFinished", "JobNotQueued", "JobWaiter",
    "Submitted", "SweepReport", "TooManyActiveJobs", "Unavailable", "UnknownJobType",
    "cancel_job", "claim_job", "dispatch", "dispatch_batch", "events", "fail_job", "fair_priority", "job_etag", "job_to_dict",
    "outbox", "report_progress", "request_hash", "resend_job", "resolve_job_type", "retry_job", "send_job",
    "status_cache", "submit_batch", "submit_job", "succeed_job", "sweep", "validate_params", "wakeups",
]
