"""The audit log: every record for admins (itself audited), and each person's own access log."""
from __future__ import annotations

import base64

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.db import get_db
from api.errors import ApiError
from api.schemas import PageQuerySchema, page_schema
from api.security import auth_required, current_user, request_origin
from shared import audit
from shared.models import AuditRecord

blp = Blueprint("audit", __name__, description="The audit log of data access.")

MAX_CURSOR_LENGTH = 40


class AuditQuerySchema(PageQuerySchema):
    subject = fields.UUID(metadata={"description": "records about this user id"})
    actor = fields.UUID(metadata={"description": "records by this user id"})
    action = fields.String(validate=validate.Length(min=1, max=64))
    since = fields.AwareDateTime(metadata={"description": "at or after (ISO 8601 with offset)"})
    until = fields.AwareDateTime(metadata={"description": "before (ISO 8601 with offset)"})


class AuditRecordSchema(Schema):
    seq = fields.Integer()
    at = fields.String()
    actor_kind = fields.String(metadata={"description": "self | admin | operator | system | anonymous | user"})
    actor_id = fields.String(allow_none=True)
    action = fields.String()
    resource_type = fields.String()
    resource_id = fields.String(allow_none=True)
    subject_id = fields.String(allow_none=True, metadata={"description": "null once the person was erased"})
    request_id = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    details = fields.Dict()


class AccessLogEntrySchema(Schema):
    at = fields.String()
    action = fields.String(metadata={"description": "e.g. admin.jobs.list, auth.sign_in, account.export"})
    resource_type = fields.String()
    resource_id = fields.String(allow_none=True)
    actor = fields.String(metadata={"description": "who, as a kind: you, an administrator, an operator, ..."})


AuditPageSchema = page_schema(AuditRecordSchema, "AuditPageSchema")
AccessLogPageSchema = page_schema(AccessLogEntrySchema, "AccessLogPageSchema")


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"audit:{seq}".encode()).decode().rstrip("=")


def _position(cursor: str) -> int:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        kind, _, seq = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if kind != "audit":
            raise ValueError("not ours")
        return int(seq)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "validation_error", "The cursor is not one this API gave out.",
                       errors={"cursor": ["Invalid cursor."]}) from None


def _page(query, *, cursor: str | None, limit: int, to_dict) -> dict:
    """Newest first by seq (contiguous, unique): a stable order for cursors."""
    if cursor:
        query = query.where(AuditRecord.seq < _position(cursor))
    rows = get_db().scalars(query.order_by(AuditRecord.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [to_dict(row) for row in rows], "next_cursor": _cursor(rows[-1].seq) if more else None}


@blp.route("/v1/admin/audit")
class AdminAudit(MethodView):
    decorators = [auth_required(admin=True)]

    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditPageSchema)
    @blp.alt_response(403, description="Not an admin.")
    def get(self, query):
        """The audit log, newest first; filter by subject, actor, action and time."""
        stmt = select(AuditRecord)
        if query.get("subject"):
            stmt = stmt.where(AuditRecord.subject_id == query["subject"])
        if query.get("actor"):
            stmt = stmt.where(AuditRecord.actor_id == query["actor"])
        if query.get("action"):
            stmt = stmt.where(AuditRecord.action == query["action"])
        if query.get("since"):
            stmt = stmt.where(AuditRecord.created_at >= query["since"])
        if query.get("until"):
            stmt = stmt.where(AuditRecord.created_at < query["until"])
        result = _page(stmt, cursor=query["cursor"], limit=query["limit"], to_dict=audit.to_dict)
        # Reading the log is itself recorded, once per person whose records were shown.
        session = get_db()
        shown = {item["subject_id"] for item in result["items"]} - {None}
        audit.record(session, actor=current_user(), action="admin.audit.read", resource="audit_log",
                     subjects=shown, request=request_origin(),
                     details={k: str(query[k]) for k in ("subject", "actor", "action") if query.get(k)})
        session.commit()
        return result


@blp.route("/v1/me/access-log")
class MyAccessLog(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, AccessLogPageSchema)
    def get(self, query):
        """Who read or changed your data, and when, newest first (the actor as a kind, never a name or address)."""
        stmt = select(AuditRecord).where(AuditRecord.subject_id == current_user().id)
        return _page(stmt, cursor=query["cursor"], limit=query["limit"], to_dict=audit.to_access_log)
