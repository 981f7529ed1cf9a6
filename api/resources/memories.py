"""Memories: short facts the user keeps for the agents ("my manager is Dana").

The user writes them here; an agent only proposes one (`memories.create`, approved like
any proposal). Text is cleaned like third-party text (shared.memories.clean_text).
"""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.db import get_db, get_read_db
from api.errors import ApiError
from api.pagination import page
from api.schemas import PageQuerySchema, page_schema
from api.security import auth_required, current_settings, current_user, owned_or_404
from shared import memories
from shared.errors import JobError
from shared.models import Memory, utcnow

blp = Blueprint("memories", __name__, url_prefix="/v1/memories",
                description="Facts the assistant uses; you write them, agents only propose them.")


class MemorySourceSchema(Schema):
    kind = fields.String(metadata={"enum": ["user", "job", "message"]})
    id = fields.String()


class MemorySchema(Schema):
    id = fields.UUID()
    text = fields.String()
    source = fields.Nested(MemorySourceSchema)
    created_at = fields.String()
    updated_at = fields.String()


MemoryPageSchema = page_schema(MemorySchema, "MemoryPageSchema")


class MemoryInSchema(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=memories.MAX_TEXT))


class MemoryPatchSchema(Schema):
    text = fields.String(validate=validate.Length(min=1, max=memories.MAX_TEXT))


def _clean(text: str) -> str:
    try:
        return memories.clean_text(text)
    except JobError as exc:
        raise ApiError(422, "validation_error", exc.message, errors=exc.errors) from None


@blp.route("")
class Memories(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, MemoryPageSchema)
    def get(self, query):
        """The caller's memories, newest first."""
        session = get_read_db(current_user().id)
        stmt = select(Memory).where(Memory.user_id == current_user().id)
        return page(session, stmt, Memory, cursor=query["cursor"], limit=query["limit"],
                    to_dict=memories.memory_to_dict)

    @blp.arguments(MemoryInSchema)
    @blp.response(201, MemorySchema)
    @blp.alt_response(409, description="memory_limit_reached: MAX_MEMORIES_PER_USER are kept already.")
    def post(self, data):
        """Keep a memory (at most 500 characters)."""
        session = get_db()
        try:
            memory = memories.create_memory(session=session, user=current_user(), text=_clean(data["text"]),
                                            source={"kind": "user"},
                                            limit=current_settings().max_memories_per_user)
        except JobError as exc:
            raise ApiError(exc.status, exc.code, exc.message, errors=exc.errors) from None
        session.commit()
        return memories.memory_to_dict(memory)


@blp.route("/<uuid:memory_id>")
class MemoriesById(MethodView):
    decorators = [auth_required()]

    @blp.response(200, MemorySchema)
    @blp.alt_response(404, description="No such memory (or not yours).")
    def get(self, memory_id):
        """One memory."""
        return memories.memory_to_dict(owned_or_404(Memory, memory_id))

    @blp.arguments(MemoryPatchSchema)
    @blp.response(200, MemorySchema)
    @blp.alt_response(404, description="No such memory (or not yours).")
    def patch(self, data, memory_id):
        """Change a memory's text."""
        memory = owned_or_404(Memory, memory_id)
        if "text" in data:
            memory.text = _clean(data["text"])
            memory.updated_at = utcnow()
            get_db().commit()
        return memories.memory_to_dict(memory)

    @blp.response(204)
    @blp.alt_response(404, description="No such memory (or not yours).")
    def delete(self, memory_id):
        """Forget a memory."""
        session = get_db()
        session.delete(owned_or_404(Memory, memory_id))
        session.commit()
