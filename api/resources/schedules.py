"""Schedules: the user's own automations ("every weekday 08:00 run agent.plan_day").

Every user also has a default schedule, the daily digest at their digest time: it follows
PATCH /v1/me (timezone, digest_time) and can be disabled, not deleted or re-timed here.
"""
from __future__ import annotations

from datetime import timedelta

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema
from sqlalchemy import func, select

from api.db import get_db
from api.errors import ApiError
from api.pagination import page
from api.schemas import JobSchema, PageQuerySchema, page_schema, validate_timezone
from api.security import auth_required, current_settings, current_user, owned_or_404
from shared.jobs import dispatch, job_to_dict, resolve_job_type, validate_params
from shared.jobtypes import get_job_type
from shared.models import Schedule, utcnow
from shared.schedules import (
    OVERLAP_POLICIES,
    InvalidCron,
    daily_cron,
    next_run,
    schedule_to_dict,
    shortest_interval,
    start_run,
    sync_default_digests,
    validate_cron,
)

blp = Blueprint("schedules", __name__, url_prefix="/v1/schedules",
                description="Your automations: a job type run on a cron, in your timezone.")

# Each schedule costs every tick a little; nobody needs more automations than this.
MAX_SCHEDULES_PER_USER = 50


class ScheduleSchema(Schema):
    id = fields.UUID()
    cron = fields.String()
    timezone = fields.String()
    job_type = fields.String()
    params = fields.Dict()
    enabled = fields.Boolean()
    overlap = fields.String(metadata={"enum": list(OVERLAP_POLICIES)})
    default = fields.Boolean(metadata={"description": "The daily digest every user has; follows PATCH /v1/me."})
    next_run_at = fields.String(allow_none=True)
    last_run_at = fields.String(allow_none=True)
    last_job_id = fields.String(allow_none=True)
    created_at = fields.String()


SchedulePageSchema = page_schema(ScheduleSchema, "SchedulePageSchema")


class _ScheduleFields(Schema):
    cron = fields.String(validate=validate.Length(min=9, max=255),
                         metadata={"description": 'Five-field cron in `timezone`, e.g. "0 8 * * 1-5".'})
    time = fields.String(metadata={"description": 'Or a daily local time "HH:MM" (instead of cron).'})
    timezone = fields.String(validate=validate_timezone,
                             metadata={"description": "IANA name; default: your profile's timezone."})
    params = fields.Dict()
    enabled = fields.Boolean()
    overlap = fields.String(validate=validate.OneOf(OVERLAP_POLICIES),
                            metadata={"description": "skip: no new run while the previous one is still going."})

    @validates_schema
    def _one_timing(self, data, **_kwargs):
        if "cron" in data and "time" in data:
            raise ValidationError("Give cron or time, not both.", "time")
        for name, check in (("cron", validate_cron), ("time", daily_cron)):
            try:
                if name in data:
                    check(data[name])
            except InvalidCron as exc:
                raise ValidationError(str(exc), name)

    @post_load
    def _time_as_cron(self, data, **_kwargs):
        if "cron" in data:
            data["cron"] = validate_cron(data["cron"])
        if "time" in data:
            data["cron"] = daily_cron(data.pop("time"))
        return data


class ScheduleCreateSchema(_ScheduleFields):
    job_type = fields.String(required=True, validate=validate.Length(min=1, max=64))

    @validates_schema
    def _timing_required(self, data, **_kwargs):
        if "cron" not in data and "time" not in data:
            raise ValidationError("Give cron or time.", "cron")


class SchedulePatchSchema(_ScheduleFields):
    job_type = fields.String(validate=validate.Length(min=1, max=64))



def _own(schedule_id) -> Schedule:
    return owned_or_404(Schedule, schedule_id)


def _check_job(job_type: str, params: dict) -> str:
    resolved = resolve_job_type(job_type, user=current_user(), settings=current_settings())
    if not resolved.schedulable:
        raise ApiError(422, "not_schedulable", f"{job_type} cannot be scheduled.",
                       errors={"job_type": ["This job type cannot be scheduled."]})
    validate_params(resolved, params)
    return resolved.name


def _check_frequency(job_type: str, cron: str) -> None:
    """Refuse a cron that runs a type more often than its registry entry allows (agents: 15 minutes)."""
    least = get_job_type(job_type).min_schedule_minutes
    if least and shortest_interval(cron) < timedelta(minutes=least):
        raise ApiError(422, "schedule_too_frequent",
                       f"{job_type} runs an AI agent, which costs on every run: schedule it at most every "
                       f"{least} minutes.", errors={"cron": [f"Runs more often than every {least} minutes."]})


def _next(schedule: Schedule):
    return next_run(schedule.cron, schedule.timezone, utcnow()) if schedule.enabled else None


@blp.route("")
class Schedules(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, SchedulePageSchema)
    def get(self, query):
        """Your schedules, newest first (the default daily digest included)."""
        session = get_db()
        if sync_default_digests(session=session, now=utcnow(), user_id=current_user().id):
            session.commit()
        stmt = select(Schedule).where(Schedule.user_id == current_user().id)
        return page(session, stmt, Schedule, cursor=query["cursor"], limit=query["limit"], to_dict=schedule_to_dict)

    @blp.arguments(ScheduleCreateSchema)
    @blp.response(201, ScheduleSchema)
    @blp.alt_response(409, description="Too many schedules.")
    @blp.alt_response(422, description="Bad cron or timezone, unknown job type, or params that do not fit it.")
    def post(self, data):
        """Create a schedule: a job type and its params, on a cron or at a daily time."""
        user = current_user()
        session = get_db()
        count = session.scalar(select(func.count()).select_from(Schedule).where(Schedule.user_id == user.id))
        if count >= MAX_SCHEDULES_PER_USER:
            raise ApiError(409, "too_many_schedules",
                           f"You have {count} schedules; the limit is {MAX_SCHEDULES_PER_USER}. Delete one first.")
        params = data.get("params", {})
        schedule = Schedule(
            user_id=user.id, cron=data["cron"], timezone=data.get("timezone", user.timezone),
            job_type=_check_job(data["job_type"], params), params=params, enabled=data.get("enabled", True),
            overlap=data.get("overlap", "skip"),
        )
        _check_frequency(schedule.job_type, schedule.cron)
        schedule.next_run_at = _next(schedule)
        session.add(schedule)
        session.commit()
        return schedule_to_dict(schedule)


@blp.route("/<uuid:schedule_id>")
class SchedulesById(MethodView):
    decorators = [auth_required()]

    @blp.response(200, ScheduleSchema)
    @blp.alt_response(404, description="No such schedule (or not yours).")
    def get(self, schedule_id):
        """One schedule."""
        return schedule_to_dict(_own(schedule_id))

    @blp.arguments(SchedulePatchSchema)
    @blp.response(200, ScheduleSchema)
    @blp.alt_response(404, description="No such schedule (or not yours).")
    @blp.alt_response(422, description="Invalid change.")
    def patch(self, data, schedule_id):
        """Change a schedule; next_run_at follows."""
        schedule = _own(schedule_id)
        if schedule.system_kind and {"cron", "timezone", "job_type"} & data.keys():
            raise ApiError(422, "default_schedule",
                           "The daily digest follows your profile: change digest_time or timezone at PATCH /v1/me.",
                           errors={key: ["Set by your profile."] for key in {"cron", "timezone", "job_type"} & data.keys()})
        if "job_type" in data or "params" in data:
            schedule.job_type = _check_job(data.get("job_type", schedule.job_type), data.get("params", schedule.params))
        _check_frequency(schedule.job_type, data.get("cron", schedule.cron))
        for name in ("cron", "timezone", "params", "enabled", "overlap"):
            if name in data:
                setattr(schedule, name, data[name])
        if {"cron", "timezone", "enabled"} & data.keys():
            schedule.next_run_at = _next(schedule)
        get_db().commit()
        return schedule_to_dict(schedule)

    @blp.response(204)
    @blp.alt_response(404, description="No such schedule (or not yours).")
    @blp.alt_response(409, description="The default daily digest is disabled, not deleted.")
    def delete(self, schedule_id):
        """Delete a schedule (its past jobs stay)."""
        schedule = _own(schedule_id)
        if schedule.system_kind:
            raise ApiError(409, "default_schedule", "The daily digest cannot be deleted; disable it: "
                           "PATCH with {\"enabled\": false}.")
        session = get_db()
        session.delete(schedule)
        session.commit()
        return "", 204


@blp.route("/<uuid:schedule_id>/run")
class ScheduleRun(MethodView):
    decorators = [auth_required()]

    @blp.response(202, JobSchema, description="The job; poll the Location.")
    @blp.alt_response(404, description="No such schedule (or not yours).")
    @blp.alt_response(409, description="Its previous run is still going and overlap is skip.")
    def post(self, schedule_id):
        """Run the schedule's job now (its timing does not change)."""
        session = get_db()
        schedule = _own(schedule_id)
        outcome = start_run(session=session, settings=current_settings(), schedule=schedule)
        if outcome.skipped:
            raise ApiError(409, "schedule_running",
                           f"Its previous run (job {outcome.job.id}) is still going; the overlap policy is skip.")
        if outcome.error is not None:
            raise outcome.error
        dispatch(session, outcome)
        session.commit()
        job = outcome.job
        response = jsonify(job_to_dict(job))
        response.status_code = 202
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        return response
