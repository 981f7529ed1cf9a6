"""Actions an agent proposed: approve (queues the action as its own job) or reject.

What the card shows is the action's `preview`, rendered from its params by code when it was
proposed (shared.previews), never only the model's summary. A proposal not decided within
ACTION_TTL_DAYS is `expired`: a week-old draft is not what the user would approve today.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from api.db import get_db
from api.errors import ApiError
from api.resources.jobs import accepted_response, job_to_dict
from api.schemas import JobSchema, page_schema
from api.security import auth_required, current_settings, current_user, owned_or_404, request_origin
from shared import audit, memories, previews
from shared.db import is_postgres
from shared.errors import JobError
from shared.jobs import dispatch, submit_job
from shared.models import AgentThread, Job, Memory, ProposedAction, Task, ThreadMessage, utcnow

blp = Blueprint("actions", __name__, url_prefix="/v1/jobs",
                description="Approve or reject what an agent job proposed (calendar events, mail drafts).")


TASK_KINDS = ("tasks.create", "tasks.update", "tasks.complete")  # the only kinds "approve all" covers


class LinkSchema(Schema):
    url = fields.String()
    host = fields.String()


class EventPreviewSchema(Schema):
    start = fields.String(allow_none=True)
    end = fields.String(allow_none=True)
    timezone = fields.String(allow_none=True)
    title = fields.String()
    description = fields.String()
    location = fields.String()
    attendees = fields.List(fields.String())


class TaskPreviewSchema(Schema):
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


class MemoryPreviewSchema(Schema):
    text = fields.String()


class PreviewSchema(Schema):
    """Exactly what approving does; only the fields of the action's kind are present."""

    to = fields.List(fields.String())
    cc = fields.List(fields.String())
    subject = fields.String()
    body = fields.String()
    links = fields.List(fields.Nested(LinkSchema))
    unknown_recipients = fields.List(fields.String(), metadata={
        "description": "Recipients or attendees the user never sent mail to (their SENT mail's To)."})
    event = fields.Nested(EventPreviewSchema)
    task = fields.Nested(TaskPreviewSchema)
    memory = fields.Nested(MemoryPreviewSchema)


class ActionSchema(Schema):
    id = fields.UUID()
    job_id = fields.UUID()
    type = fields.String(metadata={"enum": ["calendar.create_event", "mail.create_draft", *TASK_KINDS,
                                            "memories.create"]})
    summary = fields.String()
    params = fields.Dict()
    preview = fields.Nested(PreviewSchema)
    status = fields.String(metadata={"enum": ["proposed", "approved", "rejected", "expired"]})
    reason = fields.String(metadata={"description": "The user's reason, when they gave one on reject."})
    action_job_id = fields.UUID(allow_none=True)
    decided_at = fields.String(allow_none=True)
    expires_at = fields.String()
    created_at = fields.String()


ActionListSchema = page_schema(ActionSchema, "ActionListSchema")


class RejectSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=1000))


class ApproveAllSchema(Schema):
    items = fields.List(fields.Nested(JobSchema))


def _expires_at(action: ProposedAction):
    return action.created_at + timedelta(days=current_settings().action_ttl_days)


def _status(action: ProposedAction) -> str:
    if action.status == "proposed" and utcnow() >= _expires_at(action):
        return "expired"
    return action.status


def action_to_dict(action: ProposedAction) -> dict:
    return {
        "id": str(action.id),
        "job_id": str(action.job_id),
        "type": action.kind,
        "summary": action.summary,
        "params": action.params,
        "preview": action.preview or {},
        "status": _status(action),
        "reason": action.reason or "",
        "action_job_id": str(action.action_job_id) if action.action_job_id else None,
        "decided_at": action.decided_at.isoformat() if action.decided_at else None,
        "expires_at": _expires_at(action).isoformat(),
        "created_at": action.created_at.isoformat(),
    }


def _refuse_stale(action: ProposedAction) -> None:
    """409 when approving would do something other than what the card showed."""
    if _status(action) == "expired":
        raise ApiError(409, "action_expired", "This proposal expired; ask the assistant again.")
    session, user = get_db(), current_user()
    if action.kind == "tasks.update":
        try:
            task_id = uuid.UUID(str(action.params.get("task_id")))
        except ValueError:
            task_id = None
        task = session.scalar(select(Task).where(Task.id == task_id, Task.user_id == user.id)) if task_id else None
        before = ((action.preview or {}).get("task") or {}).get("before")
        if task is None or previews.task_snapshot(task) != before:
            raise ApiError(409, "task_changed", "The task changed since this was proposed; review it again.")
    if action.kind == "memories.create":
        try:
            memories.clean_text(action.params.get("text", ""))
            held = session.scalar(select(func.count()).select_from(Memory).where(Memory.user_id == user.id))
        except JobError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from exc
        limit = current_settings().max_memories_per_user
        if held >= limit:
            raise ApiError(409, "memory_limit_reached",
                           f"You keep {held} memories, the most allowed ({limit}); delete one first.")


def _approve(action: ProposedAction):
    """Submit the action's job once; (job, created). Commits."""
    session = get_db()
    if action.action_job_id is not None:
        return session.get(Job, action.action_job_id), False
    _refuse_stale(action)
    submitted = submit_job(
        session=session, user=current_user(), type_name=action.kind,
        params={**action.params, "action_id": str(action.id)},
        settings=current_settings(),
        # A second guard besides action_job_id: one job per action, even in a race.
        internal_key=f"action:{action.id}", internal=True,
    )
    action.status, action.action_job_id, action.decided_at = "approved", submitted.job.id, utcnow()
    audit.record(session, actor=current_user(), action="action.approve", resource=("proposed_action", action.id),
                 subjects=[action.user_id], request=request_origin(), details={"kind": action.kind})
    dispatch(session, submitted)  # leaves once the row has committed (shared.jobs.outbox)
    session.commit()
    return submitted.job, submitted.created


def _tell_the_thread(action: ProposedAction) -> None:
    """An assistant's thread hears of the rejection (and the reason), so its next turn knows."""
    session = get_db()
    job = session.get(Job, action.job_id)
    thread_id = ((job.result or {}).get("thread_id") if job is not None and job.type == "agent.assistant" else None)
    if not thread_id:
        return
    thread = session.scalar(select(AgentThread).where(AgentThread.id == uuid.UUID(thread_id),
                                                      AgentThread.user_id == action.user_id))
    if thread is None:
        return
    # The kind and id, not the summary: a summary can carry mail text, and this is the user's turn.
    text = f"I rejected your proposed {action.kind} (action {action.id})."
    if action.reason:
        text += f" Reason: {action.reason}"
    now = utcnow()
    session.add(ThreadMessage(thread_id=thread.id, user_id=action.user_id, role="user", content=text,
                              job_id=action.job_id, created_at=now))
    thread.updated_at = now


def _own_action(job_id, action_id, *, lock: bool = False) -> ProposedAction:
    """The caller's action of that job; anything else is a 404."""
    session = get_db()
    stmt = select(ProposedAction).where(
        ProposedAction.id == action_id, ProposedAction.job_id == job_id,
        ProposedAction.user_id == current_user().id,
    )
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()  # two approvals at once: the second waits, then sees the job
    action = session.scalar(stmt)
    if action is None:
        raise ApiError(404, "not_found", "No such action.")
    return action


@blp.route("/<uuid:job_id>/actions")
class JobActions(MethodView):
    decorators = [auth_required()]

    @blp.response(200, ActionListSchema)
    @blp.alt_response(404, description="No such job (or not yours).")
    def get(self, job_id):
        """The actions a job proposed, with their approval status (at most 100 per job)."""
        owned_or_404(Job, job_id)
        rows = get_db().scalars(
            select(ProposedAction)
            .where(ProposedAction.job_id == job_id, ProposedAction.user_id == current_user().id)
            .order_by(ProposedAction.created_at, ProposedAction.id)
            .limit(100)
        ).all()
        return {"items": [action_to_dict(row) for row in rows], "next_cursor": None}


@blp.route("/<uuid:job_id>/actions/<uuid:action_id>/approve")
class ActionApprove(MethodView):
    decorators = [auth_required()]

    @blp.response(202, JobSchema, description="The action's job, queued; poll the Location.")
    @blp.alt_response(200, schema=JobSchema, description="Approved before: the same job.")
    @blp.alt_response(404, description="No such action (or not yours).")
    @blp.alt_response(409, description="Rejected, expired (action_expired), the task changed since "
                                       "(task_changed), or no room for a memory (memory_limit_reached).")
    def post(self, job_id, action_id):
        """Approve a proposed action: it is queued as its own job, once."""
        action = _own_action(job_id, action_id, lock=True)
        if action.status == "rejected":
            raise ApiError(409, "action_rejected", "This action was rejected; it cannot be approved.")
        job, created = _approve(action)
        return accepted_response(job, created=created)


@blp.route("/<uuid:job_id>/actions/approve-all")
class ActionsApproveAll(MethodView):
    decorators = [auth_required()]

    @blp.response(200, ApproveAllSchema, description="The jobs of the job's task proposals, queued.")
    @blp.alt_response(404, description="No such job (or not yours).")
    def post(self, job_id):
        """Approve every open task proposal of a job; drafts, events and memories are never covered."""
        owned_or_404(Job, job_id)
        rows = get_db().scalars(
            select(ProposedAction)
            .where(ProposedAction.job_id == job_id, ProposedAction.user_id == current_user().id,
                   ProposedAction.kind.in_(TASK_KINDS), ProposedAction.status == "proposed")
            .order_by(ProposedAction.created_at, ProposedAction.id).limit(100)
        ).all()
        jobs = []
        for row in rows:
            try:
                jobs.append(_approve(row)[0])
            except ApiError as exc:
                if exc.status != 409:
                    raise
                get_db().rollback()  # an expired or stale one stays for the user to look at
        return {"items": [job_to_dict(job) for job in jobs]}


@blp.route("/<uuid:job_id>/actions/<uuid:action_id>/reject")
class ActionReject(MethodView):
    decorators = [auth_required()]

    @blp.arguments(RejectSchema, required=False)
    @blp.response(200, ActionSchema)
    @blp.alt_response(404, description="No such action (or not yours).")
    @blp.alt_response(409, description="The action was approved already, or expired.")
    def post(self, data, job_id, action_id):
        """Reject a proposed action, optionally with a reason: it never runs; an assistant's thread hears why."""
        session = get_db()
        data = {"reason": "", **(data or {})}
        action = _own_action(job_id, action_id, lock=True)
        if action.status == "approved":
            raise ApiError(409, "action_approved", "This action was approved already; cancel its job instead.")
        if _status(action) == "expired":
            raise ApiError(409, "action_expired", "This proposal expired.")
        if action.status != "rejected":
            action.status, action.decided_at = "rejected", utcnow()
            action.reason = data["reason"].replace("\x00", "")
            _tell_the_thread(action)
            audit.record(session, actor=current_user(), action="action.reject", resource=("proposed_action", action.id),
                         subjects=[action.user_id], request=request_origin(), details={"kind": action.kind})
            session.commit()
        return action_to_dict(action)
