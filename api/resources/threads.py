"""Conversation threads of the assistant (agent.assistant jobs write them; this reads)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from api.db import get_db, get_read_db
from api.pagination import page
from api.schemas import PageQuerySchema, page_schema
from api.security import auth_required, current_user, owned_or_404
from shared.models import AgentThread, ThreadMessage

blp = Blueprint("threads", __name__, url_prefix="/v1/threads",
                description="Conversations with the assistant; continue one with agent.assistant's thread_id.")


class ThreadSchema(Schema):
    id = fields.UUID()
    title = fields.String()
    created_at = fields.String()
    updated_at = fields.String()


ThreadPageSchema = page_schema(ThreadSchema, "ThreadPageSchema")


class ThreadMessageSchema(Schema):
    id = fields.UUID()
    role = fields.String(metadata={"enum": ["user", "assistant"]})
    content = fields.String()
    job_id = fields.UUID(allow_none=True)
    created_at = fields.String()


ThreadWithMessagesSchema = page_schema(ThreadMessageSchema, "ThreadWithMessagesSchema", base=ThreadSchema,
                                       items_description="Messages, newest first.")


def thread_to_dict(thread: AgentThread) -> dict:
    return {"id": str(thread.id), "title": thread.title, "created_at": thread.created_at.isoformat(),
            "updated_at": thread.updated_at.isoformat()}


def message_to_dict(message: ThreadMessage) -> dict:
    return {"id": str(message.id), "role": message.role, "content": message.content,
            "job_id": str(message.job_id) if message.job_id else None,
            "created_at": message.created_at.isoformat()}


@blp.route("")
class Threads(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ThreadPageSchema)
    def get(self, query):
        """The caller's threads, newest first."""
        stmt = select(AgentThread).where(AgentThread.user_id == current_user().id)
        return page(get_read_db(current_user().id), stmt, AgentThread, cursor=query["cursor"], limit=query["limit"],
                    to_dict=thread_to_dict)


@blp.route("/<uuid:thread_id>")
class ThreadsById(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ThreadWithMessagesSchema)
    @blp.alt_response(404, description="No such thread (or not yours).")
    def get(self, query, thread_id):
        """One thread and a page of its messages, newest first."""
        session = get_db()
        thread = owned_or_404(AgentThread, thread_id, what="thread")
        stmt = select(ThreadMessage).where(ThreadMessage.thread_id == thread.id)
        messages = page(session, stmt, ThreadMessage, cursor=query["cursor"], limit=query["limit"],
                        to_dict=message_to_dict)
        return {**thread_to_dict(thread), **messages}
