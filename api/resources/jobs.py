"""Jobs: submit, poll (ETag, long-poll), list, cancel; and the job types one may submit."""
from __future__ import annotations

import re
import time

from flask import g, jsonify, make_response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api import cached_polls
from api.db import get_db
from api.errors import ApiError
from api.limits import long_poll_slot
from api.live import hub
from api.pagination import page
from api.schemas import (
    JobListQuerySchema,
    JobPageSchema,
    JobSchema,
    JobSubmitSchema,
    JobTypeListSchema,
    JobWaitQuerySchema,
)
from api.security import auth_required, authenticate, current_settings, current_user, owned_or_404
from shared.jobs import TERMINAL, cancel_job, dispatch, job_etag, job_to_dict, status_cache, submit_job
from shared.jobtypes import REGISTRY, get_job_type
from shared.models import Job

blp = Blueprint("jobs", __name__, url_prefix="/v1", description="Submit jobs and poll their results.")

IDEMPOTENCY_KEY_MAX = 255



def _own_job(job_id) -> Job:
    """The caller's job; another user's job is indistinguishable from a missing one."""
    return owned_or_404(Job, job_id)


def _job_response(job_dict: dict, status: int, headers: dict | None = None, *, etag: str | None = None):
    response = make_response(jsonify(job_dict), status)
    response.headers["ETag"] = etag or job_etag(job_dict)
    response.headers["Cache-Control"] = "private, no-cache"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def accepted_response(job: Job, *, created: bool, job_dict: dict | None = None):
    """The answer to a submission: 202 for a new job, 200 for a replayed one; Location and a poll hint."""
    return _job_response(
        job_dict or job_to_dict(job),
        202 if created else 200,
        {"Location": f"/v1/jobs/{job.id}", "Retry-After": str(get_job_type(job.type).poll_after)},
    )


@blp.route("/jobs")
class Jobs(MethodView):
    # Both need only the caller's id and role: no read of their row when Redis vouches for the token.
    decorators = [auth_required(row=False)]

    @blp.arguments(JobListQuerySchema, location="query")
    @blp.response(200, JobPageSchema)
    def get(self, query):
        """The caller's jobs, newest first; filter by status and type."""
        stmt = select(Job).where(Job.user_id == current_user().id)
        if query.get("status"):
            stmt = stmt.where(Job.status == query["status"])
        if query.get("type"):
            stmt = stmt.where(Job.type == query["type"])
        return page(get_db(), stmt, Job, cursor=query["cursor"], limit=query["limit"], to_dict=job_to_dict)

    @blp.arguments(JobSubmitSchema)
    @blp.response(202, JobSchema, description="Queued; poll the Location.")
    @blp.alt_response(200, schema=JobSchema, description="Replay of an earlier request with the same Idempotency-Key.")
    @blp.alt_response(409, description="The Idempotency-Key was used with a different body.")
    @blp.alt_response(422, description="Unknown type or params that do not match its schema.")
    @blp.alt_response(429, description="Rate limited, or too many active jobs.")
    @blp.alt_response(503, description="The job type's backing service is not configured.")
    def post(self, data):
        """Submit a job; it runs on a worker, poll it at the Location."""
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (0 < len(key.strip()) <= IDEMPOTENCY_KEY_MAX):
            raise ApiError(400, "invalid_idempotency_key",
                           f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} characters.")
        session = get_db()
        settings = current_settings()
        submitted = submit_job(
            session=session, user=current_user(), type_name=data["type"], params=data["params"],
            settings=settings, idempotency_key=key.strip() if key else None, notify=data.get("notify"),
        )
        job = submitted.job
        job_dict = job_to_dict(job)
        if submitted.created:
            status_cache.remember_new(session, [(job, job_dict)])  # its first poll with the 202's ETag: a 304 from Redis
            dispatch(session, submitted)  # leaves once the row has committed (shared.jobs.outbox)
            session.commit()
        return accepted_response(job, created=submitted.created, job_dict=job_dict)


@blp.route("/jobs/<uuid:job_id>")
class JobsById(MethodView):
    # No class-wide auth_required: an unchanged poll is authorised from Redis alone (api.cached_polls).

    @blp.arguments(JobWaitQuerySchema, location="query")
    @blp.response(200, JobSchema)
    @blp.alt_response(304, description="Unchanged since the If-None-Match ETag.")
    @blp.alt_response(404, description="No such job (or not yours).")
    def get(self, query, job_id):
        """One job. `?wait=N` holds the request until the job changes (or N seconds pass)."""
        seen = request.headers.get("If-None-Match")
        wait = query["wait"]
        if seen and (answer := cached_polls.not_modified(job_id, _etags(seen), wait, current_settings())) is not None:
            return answer
        if "poll_deadline" in g:  # the cached long-poll already waited part of it
            wait = max(0.0, g.poll_deadline - time.monotonic())
        authenticate()
        session = get_db()
        job = _own_job(job_id)
        current = job_to_dict(job)
        etag = job_etag(current)
        session.commit()  # the read is done: no connection held over the Redis calls and the wait
        status_cache.refill(job, current, etag)
        # Without If-None-Match, "a change" means a change from what the job is now.
        if wait and job.status not in TERMINAL and (not seen or etag in _etags(seen)):
            # Past the user's cap on polls in flight, answer as wait=0 would.
            with long_poll_slot(current_user().id, wait, current_settings(),
                                poll_after=get_job_type(job.type).poll_after) as granted:
                if granted:
                    current = _wait_for_change(session, job, etag, deadline=time.monotonic() + wait)
                    etag = job_etag(current)
        if seen and etag in _etags(seen):
            response = make_response("", 304)
            response.headers["ETag"] = etag
            response.headers["Cache-Control"] = "private, no-cache"  # as the 200 would say
            return response
        return _job_response(current, 200, etag=etag)


def _etags(header: str) -> set[str]:
    """The tags of an If-None-Match, as we made them: a gzipped answer's tag came back as `"<tag>:gzip"`."""
    tags = set()
    for tag in header.split(","):
        tag = tag.strip().removeprefix("W/")
        tags.add(re.sub(r':(gzip|br|deflate|zstd)"$', '"', tag))
    return tags


def _wait_for_change(session, job: Job, baseline: str, *, deadline: float) -> dict:
    """Re-read the job at each notification (or poll tick) until its ETag moves."""

    def read() -> dict:
        session.expire_all()
        current = job_to_dict(session.get(Job, job.id))
        # End the transaction before waiting: on SQLite an open one holds the write lock,
        # and on PostgreSQL the next read must see commits made meanwhile.
        session.commit()
        return current

    with hub.waiter(job.id) as waiter:
        current = read()  # once more after subscribing, or a change just before it is missed
        while job_etag(current) == baseline and (remaining := deadline - time.monotonic()) > 0:
            waiter.wait(remaining)
            current = read()
    return current


@blp.route("/jobs/<uuid:job_id>/cancel")
class JobCancel(MethodView):
    decorators = [auth_required()]

    @blp.response(200, JobSchema)
    @blp.alt_response(404, description="No such job (or not yours).")
    @blp.alt_response(409, description="The job already finished.")
    def post(self, job_id):
        """Cancel a job: a queued job never runs, a running one is stopped."""
        session = get_db()
        job = _own_job(job_id)
        cancel_job(session=session, job=job)
        return _job_response(job_to_dict(job), 200)


@blp.route("/job-types")
class JobTypes(MethodView):
    decorators = [auth_required()]

    @blp.response(200, JobTypeListSchema)
    def get(self):
        """Every job type you may submit, with its params JSON schema and queue."""
        user = current_user()
        settings = current_settings()
        items = [
            {
                "type": jt.name,
                "queue": jt.queue,
                "summary": jt.summary,
                "params_schema": jt.params_schema,
                "available": jt.available(settings),
                "admin_only": jt.admin_only,
            }
            for jt in sorted(REGISTRY.values(), key=lambda jt: jt.name)
            if jt.submittable and (user.is_admin or not jt.admin_only)
        ]
        return {"items": items, "next_cursor": None}
