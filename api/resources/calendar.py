"""The user's calendar events, as last synced from Google (sync runs as calendar.sync jobs)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select

from api.db import get_read_db
from api.errors import ApiError
from api.pagination import keyset_page
from api.schemas import EventListQuerySchema, EventPageSchema, EventSchema
from api.security import auth_required, current_user, owned_or_404
from shared.models import CalendarEvent
from shared.synced import event_to_dict

blp = Blueprint("calendar", __name__, url_prefix="/v1/calendar", description="The user's calendar (synced).")


@blp.route("/events")
class Events(MethodView):
    decorators = [auth_required()]

    @blp.arguments(EventListQuerySchema, location="query")
    @blp.response(200, EventPageSchema)
    def get(self, query):
        """The caller's events overlapping [from, to), earliest start first."""
        stmt = select(CalendarEvent).where(CalendarEvent.user_id == current_user().id)
        if "start_from" in query and "to" in query and query["to"] <= query["start_from"]:
            raise ApiError(422, "validation_error", "`to` must be after `from`.", errors={"to": ["Must be after from."]})
        if "start_from" in query:
            stmt = stmt.where(CalendarEvent.end_at > query["start_from"])
        if "to" in query:
            stmt = stmt.where(CalendarEvent.start_at < query["to"])
        return keyset_page(get_read_db(current_user().id), stmt, CalendarEvent.start_at, CalendarEvent.id, cursor=query["cursor"],
                           limit=query["limit"], to_dict=event_to_dict, descending=False)


@blp.route("/events/<uuid:event_id>")
class EventsById(MethodView):
    decorators = [auth_required()]

    @blp.response(200, EventSchema)
    @blp.alt_response(404, description="No such event (or not yours).")
    def get(self, event_id):
        """One event."""
        return event_to_dict(owned_or_404(CalendarEvent, event_id, what="event"))
