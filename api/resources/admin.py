"""The admin panel's reads and levers: queues and workers, every user's jobs, user counts."""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select, union

from api.db import get_db, get_read_db
from api.errors import ApiError
from api.pagination import page
from api.schemas import JobListQuerySchema, JobSchema, page_schema
from api.security import auth_required, current_user, request_origin
from shared import audit, heartbeats, metrics
from shared.jobs import QUEUED, cancel_job, job_to_dict, resend_job
from shared.jobtypes import QUEUES
from shared.models import Job, RefreshToken, User, utcnow
from shared.schedules import SYSTEM_EMAIL

blp = Blueprint("admin", __name__, url_prefix="/v1/admin",
                description="Operators (admins only): queues and workers, every user's jobs, users.")

ACTIVE_WINDOW = timedelta(days=1)


class QueueSchema(Schema):
    name = fields.String()
    depth = fields.Integer(allow_none=True, metadata={"description": "messages waiting on the broker; null: it did not answer"})
    queued_jobs = fields.Integer(metadata={"description": "jobs in status queued (the database's count)"})
    oldest_wait_seconds = fields.Float(allow_none=True,
                                       metadata={"description": "how long the oldest queued job has waited"})


class WorkerSchema(Schema):
    hostname = fields.String()
    host = fields.String()
    pid = fields.Integer()
    queues = fields.List(fields.String())
    concurrency = fields.Integer()
    started_at = fields.Float(metadata={"description": "Unix time"})
    seen_at = fields.Float(metadata={"description": "Unix time of its last heartbeat"})


class QueuesSchema(Schema):
    queues = fields.List(fields.Nested(QueueSchema))
    workers = fields.List(fields.Nested(WorkerSchema), metadata={"description": "online: a heartbeat not yet expired"})


class AdminJobSchema(JobSchema):
    queue = fields.String()
    user_id = fields.UUID()
    user_email = fields.String()


AdminJobPageSchema = page_schema(AdminJobSchema, "AdminJobPageSchema")


class AdminJobQuerySchema(JobListQuerySchema):
    user = fields.String(validate=validate.Length(min=1, max=320),
                         metadata={"description": "the owner's email or user id"})


class UserStatsSchema(Schema):
    total = fields.Integer()
    active_last_day = fields.Integer(metadata={"description": "signed in, refreshed a token or submitted a job in the last 24 hours"})


def admin_job_to_dict(job: Job, email: str) -> dict:
    return {**job_to_dict(job), "queue": job.queue, "user_id": str(job.user_id), "user_email": email}


def _job(job_id) -> Job:
    job = get_db().get(Job, job_id)
    if job is None:
        raise ApiError(404, "not_found", "No such job.")
    return job


def _email_of(job: Job) -> str:
    return get_db().scalar(select(User.email).where(User.id == job.user_id)) or ""


@blp.route("/queues")
class AdminQueues(MethodView):
    decorators = [auth_required(admin=True)]

    @blp.response(200, QueuesSchema)
    @blp.alt_response(403, description="Not an admin.")
    def get(self):
        """Each queue's depth and oldest wait, and the workers online (from their heartbeats)."""
        now = utcnow()
        waiting_since = func.coalesce(Job.enqueued_at, Job.created_at)
        # A retry's backoff sets enqueued_at in the future: it is not waiting yet.
        rows = get_db().execute(
            select(Job.queue, func.count(), func.min(waiting_since))
            .where(Job.status == QUEUED, waiting_since <= now)
            .group_by(Job.queue)
        ).all()
        queued = {queue: (count, oldest) for queue, count, oldest in rows}
        depths = metrics.sample_queue_depths() or {}
        queues = []
        for name in QUEUES:
            count, oldest = queued.get(name, (0, None))
            queues.append({"name": name, "depth": depths.get(name), "queued_jobs": count,
                           "oldest_wait_seconds": round((now - oldest).total_seconds(), 1) if oldest else None})
        return {"queues": queues, "workers": heartbeats.online()}


@blp.route("/jobs")
class AdminJobs(MethodView):
    decorators = [auth_required(admin=True)]

    @blp.arguments(AdminJobQuerySchema, location="query")
    @blp.response(200, AdminJobPageSchema)
    @blp.alt_response(403, description="Not an admin.")
    def get(self, query):
        """Every user's jobs, newest first; filter by status, type and user."""
        session = get_read_db(current_user().id)  # a replica's slight lag is fine for a list
        stmt = select(Job)
        if query.get("status"):
            stmt = stmt.where(Job.status == query["status"])
        if query.get("type"):
            stmt = stmt.where(Job.type == query["type"])
        if query.get("user"):
            stmt = stmt.where(Job.user_id == _user_id(query["user"].strip()))
        result = page(session, stmt, Job, cursor=query["cursor"], limit=query["limit"], to_dict=lambda job: job)
        owners = dict(session.execute(
            select(User.id, User.email).where(User.id.in_({job.user_id for job in result["items"]}))
        ).all())
        result["items"] = [admin_job_to_dict(job, owners.get(job.user_id, "")) for job in result["items"]]
        # One record per person whose jobs were shown: each sees it in their access log.
        session = get_db()  # the primary: the audit log is written
        audit.record(session, actor=current_user(), action="admin.jobs.list", resource="jobs",
                     subjects=[item["user_id"] for item in result["items"]], request=request_origin(),
                     details={k: query[k] for k in ("status", "type") if query.get(k)})
        session.commit()
        return result


def _user_id(user: str):
    """The id of the user named by email or id; an unknown one matches no job (an empty page)."""
    try:
        return uuid.UUID(user)
    except ValueError:
        found = get_db().scalar(select(User.id).where(User.email == user.lower()))
        return found or uuid.UUID(int=0)


@blp.route("/jobs/<uuid:job_id>/cancel")
class AdminJobCancel(MethodView):
    decorators = [auth_required(admin=True)]

    @blp.response(200, AdminJobSchema)
    @blp.alt_response(404, description="No such job.")
    @blp.alt_response(409, description="The job already finished.")
    def post(self, job_id):
        """Cancel any user's job: a queued job never runs, a running one is stopped."""
        session = get_db()
        job = _job(job_id)
        # In the transition's transaction: kept only if the job was canceled.
        audit.record(session, actor=current_user(), action="admin.job.cancel", resource=("job", job.id),
                     subjects=[job.user_id], request=request_origin())
        cancel_job(session=session, job=job)
        return admin_job_to_dict(job, _email_of(job))


@blp.route("/jobs/<uuid:job_id>/resend")
class AdminJobResend(MethodView):
    decorators = [auth_required(admin=True)]

    @blp.response(202, AdminJobSchema, description="Sent again; its previous message, if any, is now stale.")
    @blp.alt_response(404, description="No such job.")
    @blp.alt_response(409, description="Only queued jobs are resent.")
    def post(self, job_id):
        """Send a queued job's message again (one whose message was lost, or stuck behind a dead worker)."""
        session = get_db()
        job = _job(job_id)
        audit.record(session, actor=current_user(), action="admin.job.resend", resource=("job", job.id),
                     subjects=[job.user_id], request=request_origin())
        resend_job(session=session, job=job)  # JobNotQueued: a 409 job_not_queued (and the record rolled back)
        response = jsonify(admin_job_to_dict(job, _email_of(job)))
        response.status_code = 202
        return response


@blp.route("/users/stats")
class AdminUserStats(MethodView):
    decorators = [auth_required(admin=True)]

    @blp.response(200, UserStatsSchema)
    @blp.alt_response(403, description="Not an admin.")
    def get(self):
        """How many accounts there are, and how many were active in the last day."""
        session = get_read_db(current_user().id)
        since = utcnow() - ACTIVE_WINDOW
        people = select(User.id).where(User.email != SYSTEM_EMAIL)
        active = union(
            select(RefreshToken.user_id).where(RefreshToken.created_at >= since),
            select(Job.user_id).where(Job.created_at >= since),
        ).subquery()
        return {
            "total": session.scalar(select(func.count()).select_from(people.subquery())),
            "active_last_day": session.scalar(
                select(func.count()).select_from(active).where(active.c.user_id.in_(people))
            ),
        }
