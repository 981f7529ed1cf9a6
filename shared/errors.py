"""The refusals of the job lifecycle, which the api turns into 4xx answers.

Their own module, so that what raises them (shared.jobs, the AI budget in shared.ai) and
what answers them (api.errors) need not import one another.
"""
from __future__ import annotations


class JobError(Exception):
    """A refusal the api turns into a 4xx: `code` is stable, `message` is for people."""

    status = 400

    def __init__(self, code: str, message: str, *, errors: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors


class UnknownJobType(JobError):
    status = 422


class InvalidParams(JobError):
    status = 422


class Unavailable(JobError):
    status = 503


class TooManyActiveJobs(JobError):
    status = 429


class IdempotencyConflict(JobError):
    status = 409


class JobFinished(JobError):
    status = 409


class JobNotQueued(JobError):
    """Only a queued job is resent (a worker that claimed it meanwhile keeps it)."""

    status = 409


class BudgetExceeded(JobError):
    """The user's daily AI tokens are spent."""

    status = 429
    retry_after: int = 0  # seconds until the budget resets (the Retry-After header)
