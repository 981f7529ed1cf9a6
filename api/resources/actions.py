"""Actions an agent proposed: approve (queues the action as its own job) or reject."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from api.db import get_db
from api.errors import ApiError
from api.resources.jobs import accepted_response
from api.schemas import JobSchema, page_schema
from api.security import auth_required, current_settings, current_user, owned_or_404, request_origin
from shared import audit
from shared.db import is_postgres
from shared.jobs import dispatch, submit_job
from shared.models import Job, ProposedAction, utcnow

blp = Blueprint("actions", __name__, url_prefix="/v1/jobs",
                description="Approve or reject what an agent job proposed (calendar events, mail drafts).")


class ActionSchema(Schema):
    id = fields.UUID()
    job_id = fields.UUID()
    type = fields.String()
    summary = fields.String()
    params = fields.Dict()
    status = fields.String(metadata={"enum": ["proposed", "approved", "rejected"]})
    action_job_id = fields.UUID(allow_none=True)
    decided_at = fields.String(allow_none=True)
    created_at = fields.String()


ActionListSchema = page_schema(ActionSchema, "ActionListSchema")


def action_to_dict(action: ProposedAction) -> dict:
    return {
        "id": str(action.id),
        "job_id": str(action.job_id),
        "type": action.kind,
        "summary": action.summary,
        "params": action.params,
        "status": action.status,
        "action_job_id": str(action.action_job_id) if action.action_job_id else None,
        "decided_at": action.decided_at.isoformat() if action.decided_at else None,
        "created_at": action.created_at.isoformat(),
    }


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
    @blp.alt_response(409, description="The action was rejected.")
    def post(self, job_id, action_id):
        """Approve a proposed action: it is queued as its own job, once."""
        session = get_db()
        action = _own_action(job_id, action_id, lock=True)
        if action.status == "rejected":
            raise ApiError(409, "action_rejected", "This action was rejected; it cannot be approved.")
        created = False
        if action.action_job_id is not None:
            job = session.get(Job, action.action_job_id)
        else:
            submitted = submit_job(
                session=session, user=current_user(), type_name=action.kind,
                params={**action.params, "action_id": str(action.id)},
                settings=current_settings(),
                # A second guard besides action_job_id: one job per action, even in a race.
                internal_key=f"action:{action.id}", internal=True,
            )
            job, created = submitted.job, submitted.created
            action.status, action.action_job_id, action.decided_at = "approved", job.id, utcnow()
            audit.record(session, actor=current_user(), action="action.approve", resource=("proposed_action", action.id),
                         subjects=[action.user_id], request=request_origin(), details={"kind": action.kind})
            dispatch(session, submitted)  # leaves once the row has committed (shared.jobs.outbox)
            session.commit()
        return accepted_response(job, created=created)


@blp.route("/<uuid:job_id>/actions/<uuid:action_id>/reject")
class ActionReject(MethodView):
    decorators = [auth_required()]

    @blp.response(200, ActionSchema)
    @blp.alt_response(404, description="No such action (or not yours).")
    @blp.alt_response(409, description="The action was approved already.")
    def post(self, job_id, action_id):
        """Reject a proposed action: it never runs."""
        session = get_db()
        action = _own_action(job_id, action_id, lock=True)
        if action.status == "approved":
            raise ApiError(409, "action_approved", "This action was approved already; cancel its job instead.")
        if action.status != "rejected":
            action.status, action.decided_at = "rejected", utcnow()
            audit.record(session, actor=current_user(), action="action.reject", resource=("proposed_action", action.id),
                         subjects=[action.user_id], request=request_origin(), details={"kind": action.kind})
            session.commit()
        return action_to_dict(action)
