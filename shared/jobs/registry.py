"""The job-type registry's machinery: what a job type declares (JobType) and the registry that
holds them. The catalogue of types itself is shared.jobtypes, which fills REGISTRY when it is
imported (shared.jobs imports it, so whoever uses the engine sees every type).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.settings import Settings

# An admission check: called as check(session=, user=, settings=) when a job of the type is
# submitted; it refuses by raising a shared.errors.JobError.
AdmissionCheck = Callable[..., None]

QUEUES = ("interactive", "sync", "reports", "maintenance")


@dataclass(frozen=True)
class JobType:
    name: str
    queue: str
    summary: str
    params_schema: dict
    # A JSON schema of the job's `result` once it succeeded (/openapi.json describes each
    # type's; tests/shared/test_job_results.py holds every type's real result to it).
    result_schema: dict = field(default_factory=lambda: {"type": "object"})
    admin_only: bool = False
    # False: only made by the platform itself (an approved agent action), never by a
    # POST /v1/jobs; hidden from /v1/job-types.
    submittable: bool = True
    soft_time_limit: int = 60  # seconds; the task gets SoftTimeLimitExceeded
    time_limit: int = 90  # seconds; the pool process is killed
    max_attempts: int = 3
    poll_after: int = 1  # seconds an app should wait before polling (Retry-After)
    available: Callable[[Settings], bool] = field(default=lambda settings: True)
    unavailable_code: str | None = None  # default: "<prefix>_not_configured"
    # True: a submit while the user has one of this type queued or running returns that job.
    coalesce: bool = False
    # Google scopes the job needs; one the user did not grant fails it with google_scope_missing.
    google_scopes: tuple[str, ...] = ()
    # Minutes a schedule must leave between two runs at least (0: any cron). Agents spend
    # money on every run, and a schedule runs with nobody watching.
    min_schedule_minutes: int = 0
    # False: a schedule may not run it (erasing an account is not something a clock should do).
    schedulable: bool = True
    # Checks run on submit beyond the active-jobs cap (agents: the daily AI token budget).
    admission: tuple[AdmissionCheck, ...] = ()
    # Agents: the names of the tools it may call (workers.ai.tools.TOOLS); () for other jobs.
    toolset: tuple[str, ...] = ()
    # True: the job pushes to the user's devices when it succeeds or fails (long-running
    # types, which nobody watches to the end); a submit may say "notify": true | false.
    notify: bool = False
    # False: a platform job run on a user's behalf (a webhook delivery) that does not take
    # one of the user's MAX_ACTIVE_JOBS_PER_USER slots.
    counts_toward_cap: bool = True
    # True: the run writes its live output (tokens, tools, proposals) to a Redis Stream
    # (shared.jobs.events); other types' events come from their row and its wake-ups.
    live_output: bool = False

    def __post_init__(self):
        assert self.queue in QUEUES, self.queue
        assert self.soft_time_limit < self.time_limit
        assert self.schedulable <= self.submittable, f"{self.name}: only a submittable type can be scheduled"

    @property
    def task_name(self) -> str:
        """The stable Celery task name: the api sends by name, workers register it."""
        return f"jobs.{self.name}"


REGISTRY: dict[str, JobType] = {}


def register(job_type: JobType) -> JobType:
    REGISTRY[job_type.name] = job_type
    return job_type


def get_job_type(name: str) -> JobType | None:
    return REGISTRY.get(name)


def longest_time_limit() -> int:
    return max(jt.time_limit for jt in REGISTRY.values())
