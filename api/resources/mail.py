"""The user's mail (metadata), as last synced from Gmail (sync runs as mail.sync jobs)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import exists, func, literal_column, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from api.db import get_read_db
from api.pagination import keyset_page
from api.schemas import MessageListQuerySchema, MessagePageSchema, MessageSchema
from api.security import auth_required, current_user, owned_or_404
from shared.db import is_postgres
from shared.models import MailMessage
from shared.synced import message_to_dict

blp = Blueprint("mail", __name__, url_prefix="/v1/mail", description="The user's mail (synced metadata).")


def _has_label(session, label: str):
    if is_postgres(session):
        return type_coerce(MailMessage.labels, JSONB).contains([label])
    each = func.json_each(MailMessage.labels).table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == label))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@blp.route("/messages")
class Messages(MethodView):
    decorators = [auth_required()]

    @blp.arguments(MessageListQuerySchema, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, query):
        """The caller's messages, newest first; filter by label and by words."""
        session = get_read_db(current_user().id)
        stmt = select(MailMessage).where(MailMessage.user_id == current_user().id)
        if "label" in query:
            stmt = stmt.where(_has_label(session, query["label"]))
        if "q" in query:
            pattern = _like(query["q"].strip())
            stmt = stmt.where(or_(*(column.ilike(pattern, escape="\\") for column in
                                    (MailMessage.subject, MailMessage.sender, MailMessage.snippet))))
        return keyset_page(session, stmt, MailMessage.date, MailMessage.id, cursor=query["cursor"],
                           limit=query["limit"], to_dict=message_to_dict)


@blp.route("/messages/<uuid:message_id>")
class MessagesById(MethodView):
    decorators = [auth_required()]

    @blp.response(200, MessageSchema)
    @blp.alt_response(404, description="No such message (or not yours).")
    def get(self, message_id):
        """One message."""
        return message_to_dict(owned_or_404(MailMessage, message_id, what="message"))
