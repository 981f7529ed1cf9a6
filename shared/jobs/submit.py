"""Submitting a job: its type resolved and admitted, its params checked, its row inserted
(with its Idempotency-Key, its slot under the user's cap, its fair broker priority)."""
from __future__ import annotations

import hashlib
import json
import logging
import random
import uuid
from dataclasses import dataclass

from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, make_transient_to_detached

from shared.db import is_postgres
from shared.errors import (
    IdempotencyConflict,
    InvalidParams,
    TooManyActiveJobs,
    Unavailable,
    UnknownJobType,
)
from shared.jobs.registry import JobType, get_job_type
from shared.jobs.states import ACTIVE, QUEUED
from shared.models import Job, Principal, User, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)



# -- submitting ------------------------------------------------------------------------

_validators: dict[str, Draft202012Validator] = {}


def validate_params(job_type: JobType, params) -> dict:
    """Check `params` against the type's JSON schema; field errors keyed by path."""
    validator = _validators.get(job_type.name)
    if validator is None:
        validator = Draft202012Validator(job_type.params_schema, format_checker=FormatChecker())
        _validators[job_type.name] = validator
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(params):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required" or error.validator == "additionalProperties":
            # These describe a property, not the object: name the property itself.
            key = _property_named(error) or path or "params"
            path = f"{path}.{key}" if path and key != path else key
        # A schema may say what it wants in words ("errorMessage", as ajv-errors spells it)
        # where a bare pattern would only be quoted back.
        message = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
        errors.setdefault(path or "params", []).append(message or error.message)
    if errors:
        raise InvalidParams("invalid_params", "The params do not match the job type's schema.", errors=errors)
    return params


def _property_named(error) -> str | None:
    if error.validator == "required":
        missing = [p for p in error.validator_value if p not in error.instance]
        return missing[0] if missing else None
    extra = [p for p in error.instance if p not in error.schema.get("properties", {})]
    return extra[0] if extra else None


def request_hash(job_type: str, params: dict) -> str:
    body = json.dumps({"type": job_type, "params": params}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def resolve_job_type(name, *, user: User | Principal, settings: Settings, internal: bool = False) -> JobType:
    """The job type `user` may submit under `name`, or the error that says why not.

    `internal`: the platform itself submits it (an approved action), not the user's request.
    """
    job_type = get_job_type(name) if isinstance(name, str) else None
    hidden = job_type is not None and not job_type.submittable and not internal
    if job_type is None or hidden or (job_type.admin_only and not user.is_admin):
        # Admin-only types are hidden from users, as if they did not exist.
        raise UnknownJobType(
            "unknown_job_type",
            f"Unknown job type {name!r}; GET /v1/job-types lists the ones you may submit.",
            errors={"type": ["Unknown job type."]},
        )
    if not job_type.available(settings):
        code = job_type.unavailable_code or f"{job_type.name.split('.')[0]}_not_configured"
        raise Unavailable(code, f"{job_type.name} is not configured on this server.")
    return job_type


@dataclass
class Submitted:
    job: Job
    created: bool  # False: an earlier submission with the same Idempotency-Key, or a coalesced one
    priority: int | None = None  # the broker priority to send it with (see fair_priority)


FAIR_SHARE = 3  # jobs a user may have queued or running before theirs yield to others


def fair_priority(*, queue: str, active: int) -> int:
    """The broker priority of a user's next job (Redis serves 0 first, then 3, 6, 9).

    Workers read every queue's priority-0 list before any priority-3 list, so the levels
    are shared across queues: interactive jobs take 0 and 3, the bulk queues 6 and 9,
    which keeps interactive work ahead of any bulk backlog. Within each pair, a user
    with FAIR_SHARE or more jobs active gets the later level, so one user's flood does
    not become everyone else's wait.
    """
    base = 0 if queue == "interactive" else 6
    return base + (3 if active >= FAIR_SHARE else 0)


def submit_job(
    *,
    session: Session,
    user: User | Principal,
    type_name,
    params,
    settings: Settings,
    idempotency_key: str | None = None,
    internal: bool = False,
    notify: bool | None = None,
    internal_key: str | None = None,
) -> Submitted:
    """Insert a queued job (not yet committed, not yet sent: `dispatch` it, then commit).

    `internal_key`: the platform's own idempotency key (action:, schedule:, webhook:, beat:),
    kept apart from the keys users send so that none of theirs can collide with it.
    """
    job_type = resolve_job_type(type_name, user=user, settings=settings, internal=internal)
    if params is None:
        params = {}
    validate_params(job_type, params)
    digest = request_hash(job_type.name, params)

    key = _Key(idempotency_key, internal_key)
    if key:
        existing = key.find(session, user.id)
        if existing is not None:
            return _replay(existing, digest)

    _admit(session, user, job_type, settings)
    if job_type.coalesce:
        # Under the user lock, so two concurrent submits cannot both miss the active one.
        _lock_user(session, user.id)
        active_job = session.scalar(
            select(Job).where(Job.user_id == user.id, Job.type == job_type.name, Job.status.in_(ACTIVE))
            .order_by(Job.created_at).limit(1)
        )
        if active_job is not None:
            return Submitted(job=active_job, created=False)

    cap = settings.max_active_jobs_per_user
    now = utcnow()
    values = dict(
        id=uuid.uuid4(), user_id=user.id, type=job_type.name, queue=job_type.queue, status=QUEUED, params=params,
        progress=0, progress_message=None, result=None, error_code=None, error_message=None, attempts=0,
        max_attempts=job_type.max_attempts, idempotency_key=idempotency_key, internal_key=internal_key,
        request_hash=digest,
        run_token=str(uuid.uuid4()), notify=notify, version=0,
        enqueued_at=now,  # sent right after the commit; see shared.jobs.send
        created_at=now, updated_at=now, started_at=None, finished_at=None, expires_at=None,
    )
    if not job_type.counts_toward_cap:
        # No slot: the unique index on (user_id, slot) ignores nulls, so no cap applies.
        inserted = session.execute(_insert_ignoring_conflicts(session), {**values, "slot": None}).rowcount
        if not inserted:  # a concurrent submit with this Idempotency-Key won
            existing = key.find(session, user.id) if key else None
            if existing is None:
                raise IdempotencyConflict("conflict", "A concurrent submission conflicted; retry.")
            return _replay(existing, digest)
        job = Job(slot=None, **values)
        make_transient_to_detached(job)
        session.add(job)
        return Submitted(job=job, created=True, priority=fair_priority(queue=job_type.queue, active=0))
    for attempt in range(SLOT_ATTEMPTS):
        # After a collision, read which slots are taken rather than guess again.
        active, used = _active_slots(session, user.id, cap, read_slots=attempt > 0)
        slot = _free_slot(used, cap) if active < cap else None
        if slot is None:
            raise TooManyActiveJobs(
                "too_many_active_jobs",
                f"You have {active} jobs queued or running; the limit is {cap}. Wait for some to finish.",
            )
        # Any unique conflict inserts nothing and raises nothing (no savepoint needed): the
        # slot was taken meanwhile, or a concurrent request with this Idempotency-Key won.
        inserted = session.execute(_insert_ignoring_conflicts(session), {**values, "slot": slot}).rowcount
        if inserted:
            break
        if key and (existing := key.find(session, user.id)) is not None:
            return _replay(existing, digest)
    else:
        raise TooManyActiveJobs("too_many_active_jobs", "Too many submissions at once; retry in a moment.")
    job = Job(slot=slot, **values)
    make_transient_to_detached(job)  # the row exists: the session takes it as loaded, no INSERT
    session.add(job)
    return Submitted(job=job, created=True, priority=fair_priority(queue=job_type.queue, active=active))


SLOT_ATTEMPTS = 8  # picks of a free slot before a submission racing many others gives up


# How far a submit counts the user's active jobs. Below the cap (20 by default) the count is
# exact; a cap set higher is held by the slots themselves (a pick with none free refuses), so a
# user with thousands active does not make every submit count them all.
COUNT_BOUND = 64


def _active_slots(session: Session, user_id, cap: int, *, read_slots: bool) -> tuple[int, set[int]]:
    """How many jobs the user has active (up to COUNT_BOUND), and (near the cap, or when asked) their slots."""
    mine = (Job.user_id == user_id) & Job.status.in_(ACTIVE)
    bound = min(cap, COUNT_BOUND)
    active = session.scalar(select(func.count()).select_from(select(Job.id).where(mine).limit(bound).subquery()))
    if not read_slots and active < cap // 2:
        return active, set()  # far from the cap a random pick rarely collides
    slots = set(session.scalars(select(Job.slot).where(mine, Job.slot.is_not(None))))
    return max(active, len(slots)), slots


def _free_slot(used: set, cap: int) -> int | None:
    """A random slot below `cap` not known to be taken: concurrent submissions of one user
    rarely pick the same, and a pick that collides is retried (see submit_job)."""
    if len(used) < cap // 2:
        while (slot := random.randrange(cap)) in used:
            pass
        return slot
    free = [slot for slot in range(cap) if slot not in used]
    return random.choice(free) if free else None


# Built once, values bound at execution: a statement built per request spends more time in
# SQLAlchemy (coercing each value, computing its cache key) than the insert takes.
_INSERTS = {
    "postgresql": postgresql.insert(Job.__table__).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(Job.__table__).on_conflict_do_nothing(),
}


def _insert_ignoring_conflicts(session: Session):
    return _INSERTS["postgresql" if is_postgres(session) else "sqlite"]


def _admit(session: Session, user: User | Principal, job_type: JobType, settings: Settings) -> None:
    """The type's own checks beyond the active-jobs cap (agents: the AI token budget)."""
    if job_type.admission and not isinstance(user, User):
        user = session.get(User, user.id) or user  # the checks read the row (a budget's day is the user's)
    for check in job_type.admission:
        check(session=session, user=user, settings=settings)


@dataclass(frozen=True)
class _Key:
    """A submission's idempotency key in its scope: the user's, or the platform's own."""

    user: str | None
    internal: str | None

    def __bool__(self) -> bool:
        return bool(self.user or self.internal)

    def find(self, session: Session, user_id) -> Job | None:
        column, value = (Job.internal_key, self.internal) if self.internal else (Job.idempotency_key, self.user)
        return session.scalar(select(Job).where(Job.user_id == user_id, column == value))


def _replay(existing: Job, digest: str) -> Submitted:
    if existing.request_hash != digest:
        raise IdempotencyConflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request body.",
        )
    return Submitted(job=existing, created=False)


def _lock_user(session: Session, user_id) -> None:
    """Serialize one user's submissions of a coalescing type, so that two at once cannot both
    miss the active job they should join (the active-jobs cap needs no lock: see the slots)."""
    if is_postgres(session):
        session.execute(select(User.id).where(User.id == user_id).with_for_update())
    # SQLite: every transaction began IMMEDIATE, which already serializes writers.
