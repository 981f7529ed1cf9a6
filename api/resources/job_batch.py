"""POST /v1/jobs/batch: many submissions in one request (an app flushing its offline queue)."""
from __future__ import annotations

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from api.db import get_db
from api.resources.jobs import IDEMPOTENCY_KEY_MAX
from api.schemas import JobErrorSchema
from api.security import auth_required, current_settings, current_user
from shared.jobs import MAX_BATCH, BatchItem, JobError, dispatch_batch, job_to_dict, status_cache, submit_batch

blp = Blueprint("job_batch", __name__, url_prefix="/v1", description="Submit many jobs in one request.")


class JobBatchItemSchema(Schema):
    type = fields.String(required=True, validate=validate.Length(min=1, max=64))
    params = fields.Dict(load_default=dict)
    idempotency_key = fields.String(
        validate=[validate.Length(min=1, max=IDEMPOTENCY_KEY_MAX),
                  validate.Regexp(r"\s*\S", error="Must not be blank.")],
        metadata={"description": "Same key and body as an earlier submission: that job, replayed."},
    )


class JobBatchSchema(Schema):
    jobs = fields.List(fields.Nested(JobBatchItemSchema), required=True,
                       validate=validate.Length(min=1, max=MAX_BATCH))


class JobBatchErrorDetailSchema(JobErrorSchema):
    status = fields.Integer(metadata={"description": "The HTTP status a single POST /v1/jobs would have answered."})
    errors = fields.Dict(metadata={"description": "Field errors, as in a 422."})


class JobBatchErrorSchema(Schema):
    error = fields.Nested(JobBatchErrorDetailSchema, required=True)


class JobBatchResultSchema(Schema):
    items = fields.List(
        fields.Raw(metadata={"oneOf": [{"$ref": "#/components/schemas/Job"},
                                       {"$ref": "#/components/schemas/JobBatchError"}]}),
        metadata={"description": "One per submitted item, in order: the job (new or replayed), or its error."},
    )


@blp.route("/jobs/batch")
class JobBatch(MethodView):
    decorators = [auth_required(row=False)]

    @blp.arguments(JobBatchSchema)
    @blp.response(200, JobBatchResultSchema, description="Each item's job or error, in request order.")
    @blp.alt_response(422, description="The body is not a list of 1-100 items of {type, params, idempotency_key?}.")
    @blp.alt_response(429, description="Rate limited (each item counts as one request).")
    def post(self, data):
        """Submit up to 100 jobs at once; the valid ones are accepted together, the rest say why not."""
        session = get_db()
        items = [
            BatchItem(type=item["type"], params=item["params"],
                      idempotency_key=(item.get("idempotency_key") or "").strip() or None)
            for item in data["jobs"]
        ]
        outcomes = submit_batch(session=session, user=current_user(), items=items,
                                settings=current_settings())
        answers = [_answer(outcome) for outcome in outcomes]
        if any(not isinstance(o, JobError) and o.created for o in outcomes):
            status_cache.remember_new(session, [(o.job, a) for o, a in zip(outcomes, answers)
                                                if not isinstance(o, JobError) and o.created])
            dispatch_batch(session, outcomes)  # they leave once the rows have committed (shared.jobs.outbox)
            session.commit()
        else:
            session.rollback()  # replays and refusals only: nothing was written
        return jsonify({"items": answers})


def _answer(outcome) -> dict:
    if isinstance(outcome, JobError):
        error = {"code": outcome.code, "message": outcome.message, "status": outcome.status}
        if outcome.errors:
            error["errors"] = outcome.errors
        return {"error": error}
    return job_to_dict(outcome.job)


def register_components(api) -> None:
    """Name the item shapes the result's oneOf points at (a Raw field registers nothing itself)."""
    api.spec.components.schema("JobBatchError", schema=JobBatchErrorSchema)
