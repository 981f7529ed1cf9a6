"""Schedules: cron in a timezone, next-run arithmetic, and each user's default daily digest.

Shared by the api (validation, next_run_at on create and edit) and the scheduler's tick.
A cron is read as wall-clock time in the schedule's IANA timezone, so "0 8 * * *" in
Europe/Berlin is 06:00 UTC in summer and 07:00 UTC in winter. Across a DST change a
wall time that happens twice runs once (the first), and one that does not exist that
day runs when the clock jumps past it (02:30 on a spring-forward night runs at 03:30).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from sqlalchemy import Integer, String, and_, cast, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.accounts import SYSTEM_EMAIL, system_user  # noqa: F401  (the names callers import from here)
from shared.jobs import ACTIVE, JobError, submit_job
from shared.models import SYSTEM_ROLE, Job, Schedule, User, utcnow
from shared.settings import Settings

DIGEST_KIND = "daily_digest"
DIGEST_JOB_TYPE = "report.daily_digest"
OVERLAP_POLICIES = ("skip", "allow")
_DAILY_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class InvalidCron(ValueError):
    pass


def validate_cron(cron: str) -> str:
    """The cron, normalized to single spaces; five fields (minute hour day month weekday)."""
    fields = cron.split() if isinstance(cron, str) else []
    if len(fields) != 5 or not croniter.is_valid(" ".join(fields)):
        raise InvalidCron("Use a five-field cron expression: minute hour day-of-month month day-of-week.")
    cron = " ".join(fields)
    next_run(cron, "UTC", utcnow())  # valid syntax can still name no date at all ("0 0 31 2 *")
    return cron


def daily_cron(hh_mm: str) -> str:
    """The cron of a daily local time "HH:MM"."""
    match = _DAILY_TIME.fullmatch(hh_mm or "")
    if match is None:
        raise InvalidCron("Use HH:MM, 24-hour (e.g. 07:30).")
    return f"{int(match.group(2))} {int(match.group(1))} * * *"


def next_run(cron: str, timezone: str, after: datetime) -> datetime:
    """The first run strictly after `after` (aware), as an aware UTC datetime."""
    zone = ZoneInfo(timezone)
    # Step through naive wall-clock times, so croniter never does DST arithmetic itself.
    local = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) - timedelta(hours=3)
    wall_times = croniter(cron, local)
    try:
        # Starting 3 hours back catches a wall time repeated when the clocks went back.
        for _ in range(100000):
            candidate = _to_utc(wall_times.get_next(datetime), zone)
            if candidate > after:
                return candidate
    except CroniterBadDateError:
        pass
    raise InvalidCron(f"{cron!r} never runs on any date.")


def shortest_interval(cron: str) -> timedelta:
    """The shortest wall-clock time between two runs of `cron`.

    Every day it runs, it runs at the same times, so the gaps are those between one day's
    times and, when it runs on two days in a row, from the last of one to the first of the next.
    """
    minutes, hours, *_ = croniter(cron).expanded
    times = sorted(h * 60 + m for h in (range(24) if hours == ["*"] else hours)
                   for m in (range(60) if minutes == ["*"] else minutes))
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    overnight = 24 * 60 - times[-1] + times[0]
    if overnight < 24 * 60 and (not gaps or overnight < min(gaps)) and _runs_two_days_in_a_row(cron):
        gaps.append(overnight)
    return timedelta(minutes=min(gaps)) if gaps else timedelta(days=1)


def _runs_two_days_in_a_row(cron: str) -> bool:
    day_fields = " ".join(cron.split()[2:])
    days = croniter(f"0 0 {day_fields}", datetime(2000, 1, 1))
    previous = None
    for _ in range(800):  # more than two years of days: every month length and weekday meet
        day = days.get_next(datetime)
        if previous is not None and day - previous == timedelta(days=1):
            return True
        previous = day
    return False


def _to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0: a repeated wall time is its first occurrence; a skipped one is read with the
    # offset before the jump, which lands just past the jump (02:30 -> 03:30 local).
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


# -- running one now


@dataclass
class RunOutcome:
    job: Job | None
    created: bool = False
    priority: int | None = None  # the broker priority to send it with (shared.jobs.fair_priority)
    skipped: bool = False
    error: JobError | None = None


def start_run(*, session: Session, settings: Settings, schedule: Schedule, internal_key: str | None = None,
              now: datetime | None = None) -> RunOutcome:
    """Submit the schedule's job as its owner (not committed: shared.jobs.dispatch it, then commit)."""
    if schedule.overlap == "skip" and schedule.last_job_id is not None:
        last = session.get(Job, schedule.last_job_id)
        if last is not None and last.status in ACTIVE:
            return RunOutcome(job=last, skipped=True)
    user = session.get(User, schedule.user_id)
    try:
        submitted = submit_job(session=session, user=user, type_name=schedule.job_type, params=schedule.params,
                               settings=settings, internal_key=internal_key)
    except JobError as exc:
        return RunOutcome(job=None, error=exc)
    schedule.last_job_id = submitted.job.id
    schedule.last_run_at = now or utcnow()
    return RunOutcome(job=submitted.job, created=submitted.created, priority=submitted.priority)


# -- the default daily digest ------------------------------------------------------------


def _expected_digest_cron():
    """SQL for daily_cron(users.digest_time): "07:05" -> "5 7 * * *"."""
    minute = cast(cast(func.substr(User.digest_time, 4, 2), Integer), String)
    hour = cast(cast(func.substr(User.digest_time, 1, 2), Integer), String)
    return minute.concat(" ").concat(hour).concat(" * * *")


def sync_default_digests(*, session: Session, now: datetime, user_id=None, batch: int = 1000) -> int:
    """Give users without one their default digest schedule, and move those whose user changed
    timezone or digest time; returns how many were made or moved (the caller commits)."""
    changed = 0
    missing = (
        select(User.id, User.digest_time, User.timezone)
        .outerjoin(Schedule, and_(Schedule.user_id == User.id, Schedule.system_kind == DIGEST_KIND))
        .where(Schedule.id.is_(None), User.role != SYSTEM_ROLE, User.disabled_at.is_(None))
        .limit(batch)
    )
    if user_id is not None:
        missing = missing.where(User.id == user_id)
    for uid, digest_time, tz in session.execute(missing).all():
        cron = daily_cron(digest_time)
        try:
            with session.begin_nested():
                session.add(Schedule(
                    id=uuid.uuid4(), user_id=uid, cron=cron, timezone=tz, job_type=DIGEST_JOB_TYPE, params={},
                    enabled=True, overlap="skip", system_kind=DIGEST_KIND, next_run_at=next_run(cron, tz, now),
                ))
            changed += 1
        except IntegrityError:
            pass  # a concurrent tick made it (unique user_id, system_kind), or the user was just deleted

    drifted = (
        select(Schedule.id, Schedule.cron, Schedule.timezone, User.digest_time, User.timezone)
        .join(User, User.id == Schedule.user_id)
        .where(Schedule.system_kind == DIGEST_KIND,
               or_(Schedule.timezone != User.timezone, Schedule.cron != _expected_digest_cron()))
        .limit(batch)
    )
    if user_id is not None:
        drifted = drifted.where(User.id == user_id)
    for sid, old_cron, old_tz, digest_time, tz in session.execute(drifted).all():
        cron = daily_cron(digest_time)
        result = session.execute(
            update(Schedule)
            .where(Schedule.id == sid, Schedule.cron == old_cron, Schedule.timezone == old_tz)
            .values(cron=cron, timezone=tz, next_run_at=next_run(cron, tz, now), updated_at=now)
        )
        changed += result.rowcount
    return changed


# -- the platform's own user -------------------------------------------------------------

# Owns the jobs beat submits itself (nightly backups, retention). Its identity is its role,
# not an address anyone could register first. It cannot sign in: its password hash is not a
# hash at all, so no password ever verifies against it (and sign-in refuses the role).
def schedule_to_dict(schedule: Schedule) -> dict:
    return {
        "id": str(schedule.id),
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "job_type": schedule.job_type,
        "params": schedule.params,
        "enabled": schedule.enabled,
        "overlap": schedule.overlap,
        "default": schedule.system_kind is not None,
        "next_run_at": _iso(schedule.next_run_at),
        "last_run_at": _iso(schedule.last_run_at),
        "last_job_id": str(schedule.last_job_id) if schedule.last_job_id else None,
        "created_at": _iso(schedule.created_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None

