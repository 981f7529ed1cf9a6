"""A job's live output as Server-Sent Events, and the tickets that let EventSource in.

Agent jobs (types with `live_output`) replay their Redis Stream (shared.jobs.events): every
event's `id:` is its stream entry id, so a client that reconnects with `Last-Event-ID` (or
`?last_event_id=`) gets exactly the entries after it. Other jobs' events are made from
their row at each wake-up (`progress`, then `done`), with ids `p<version>`.

A stream holds its connection until `done`: it is one of this process's held connections
(MAX_HELD_CONNECTIONS) and one of the user's stream leases (MAX_STREAMS_PER_USER), renewed
at each heartbeat. In production nginx sends these to the events process (gevent), where a
held connection costs a greenlet, not a thread.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import socket
import time
import uuid

import redis
from flask import Response, g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.db import get_db
from api.errors import ApiError
from api.limits import StreamLease, held_connection, jittered
from api.live import hub
from api.security import authenticate, current_settings, owned_or_404
from shared.db import new_session
from shared.jobs import TERMINAL
from shared.jobs import events as job_events
from shared.jobtypes import get_job_type
from shared.models import Job, User
from shared.redis_clients import cache_redis

blp = Blueprint("job_events", __name__, url_prefix="/v1",
                description="Live output of a job, as Server-Sent Events.")

HEARTBEAT_SECONDS = 15
TICKET_SECONDS = 60
# A client that has not taken what we sent for this long is dropped (its socket buffer is
# the bound on what it can make us hold), so it slows nobody else.
SEND_TIMEOUT_SECONDS = 30
_FUTURE_MS = 60_000  # ids ahead of our clock by more than this were never ours


class EventsQuerySchema(Schema):
    last_event_id = fields.String(validate=validate.Length(max=64),
                                  metadata={"description": "resume after this event (as Last-Event-ID)"})
    ticket = fields.String(validate=validate.Length(max=128),
                           metadata={"description": "a single-use ticket from POST .../events/ticket "
                                                    "(for EventSource, which cannot send headers)"})


class TicketSchema(Schema):
    ticket = fields.String()
    expires_in = fields.Integer()


def ticket_key(ticket: str) -> str:
    # Stored hashed: whoever reads Redis cannot replay a ticket still valid.
    return f"evticket:{hashlib.sha256(ticket.encode()).hexdigest()}"


@blp.route("/jobs/<uuid:job_id>/events/ticket")
class JobEventsTicket(MethodView):
    @blp.response(201, TicketSchema)
    @blp.alt_response(404, description="No such job (or not yours).")
    def post(self, job_id):
        """A single-use ticket (60 s) to open this job's events with EventSource."""
        user = authenticate()
        owned_or_404(Job, job_id, what="job")
        ticket = secrets.token_urlsafe(32)
        try:
            cache_redis().set(ticket_key(ticket), f"{user.id}:{job_id}", ex=TICKET_SECONDS)
        except redis.RedisError:
            raise ApiError(503, "unavailable", "Tickets cannot be issued right now; use the Authorization header.")
        return {"ticket": ticket, "expires_in": TICKET_SECONDS}


def _ticket_user(ticket: str, job_id) -> User:
    """The user a ticket was minted for, consuming it; 401 when it is unknown, used or expired."""
    try:
        value = cache_redis().getdel(ticket_key(ticket))
    except redis.RedisError:
        value = None
    user_id, _, ticket_job = (value or b"").decode(errors="replace").partition(":")
    user = None
    if ticket_job == str(job_id):
        with contextlib.suppress(ValueError):
            user = get_db().get(User, uuid.UUID(user_id))
    if user is None:
        raise ApiError(401, "invalid_ticket", "The ticket is unknown, used or expired; ask for a new one.")
    g.user = user
    return user


@blp.route("/jobs/<uuid:job_id>/events")
class JobEvents(MethodView):
    @blp.arguments(EventsQuerySchema, location="query")
    @blp.response(200, description="text/event-stream: token, tool, action, progress, attempt, snapshot, done.",
                  content_type="text/event-stream")
    @blp.alt_response(400, description="A Last-Event-ID that is not one of ours.")
    @blp.alt_response(401, description="No valid token or ticket.")
    @blp.alt_response(404, description="No such job (or not yours).")
    @blp.alt_response(429, description="Too many streams (yours, or this server's); see Retry-After.")
    def get(self, query, job_id):
        """The job's events as they happen (Server-Sent Events); a finished job replays and closes."""
        user = _ticket_user(query["ticket"], job_id) if query.get("ticket") else authenticate()
        job = owned_or_404(Job, job_id, what="job")
        live = job_events.live_output(job.type)
        resume = request.headers.get("Last-Event-ID") or query.get("last_event_id")
        after = _resume_point(resume, live)
        settings = current_settings()
        get_db().commit()  # end the read: the stream holds no database connection

        poll_after = get_job_type(job.type).poll_after if get_job_type(job.type) else 2
        slots = contextlib.ExitStack()
        if not slots.enter_context(held_connection(settings)):
            slots.close()
            raise ApiError(429, "too_many_held_connections", "This server holds all the streams it can; retry soon.",
                           headers={"Retry-After": str(jittered(poll_after))})
        lease = StreamLease(user.id, settings)
        if not lease.granted:
            slots.close()
            raise ApiError(429, "too_many_streams",
                           f"You have {settings.max_streams_per_user} event streams open; close one first.",
                           headers={"Retry-After": str(jittered(poll_after))})
        slots.callback(lease.release)
        _bound_sends(request.environ)

        events = _live_events(job.id, after, lease) if live else _row_events(job.id, after, lease)
        response = Response(events, mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
        response.call_on_close(slots.close)  # also when the client goes away mid-stream
        return response


def _resume_point(value: str | None, live: bool):
    """Where a reconnecting client left off, or None (from the start); 400 if it is not one of ours."""
    if not value:
        return None
    value = value.strip()
    if live:
        parsed = job_events.parse_id(value)
        if parsed is not None and parsed[0] <= job_events.now_ms() + _FUTURE_MS:
            return value
    elif value.startswith("p") and value[1:].isdigit() and len(value) < 20:
        return int(value[1:])
    raise ApiError(400, "invalid_last_event_id", "Last-Event-ID is not an event id of this job's stream; "
                                                 "reconnect without it to start from the beginning.")


def _bound_sends(environ) -> None:
    """A send that waits longer than SEND_TIMEOUT_SECONDS for the client fails, ending the stream."""
    sock = environ.get("gunicorn.socket")
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.settimeout(SEND_TIMEOUT_SECONDS)


def _sse(kind: str, data: dict, event_id: str) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _final_state(job_id) -> tuple[str, dict] | None:
    """(id, done data) of a finished job, from the database; None while it is not finished."""
    with new_session() as session:
        row = session.execute(select(Job.status, Job.error_code, Job.error_message, Job.version, Job.finished_at)
                              .where(Job.id == job_id)).one_or_none()
    if row is None:
        return "0-1", {"status": "deleted"}
    if row.status not in TERMINAL:
        return None
    data = {"status": row.status}
    if row.error_code:
        data["error"] = {"code": row.error_code, "message": row.error_message}
    stamp = int(row.finished_at.timestamp() * 1000) if row.finished_at else job_events.now_ms()
    return f"{stamp}-0", data


def _live_events(job_id, after: str | None, lease: StreamLease):
    """A live job's stream from `after`: a snapshot first if `after` was trimmed away, `done` last."""
    with hub.watch(job_id) as woken:
        yield "retry: 1000\n\n"
        try:
            first = job_events.first_id(job_id)
        except redis.RedisError:
            first = None
        if after is not None and first is not None and job_events.parse_id(after) < job_events.parse_id(first):
            snap_id, data, done = job_events.snapshot(job_id)
            if snap_id is not None:
                yield _sse("snapshot", data, snap_id)
                after = snap_id
            if done is not None:
                yield _sse("done", done[2], done[0])
                return
        check_row = True
        beat = time.monotonic() + HEARTBEAT_SECONDS
        while True:
            woken.clear()
            try:
                entries = job_events.read(job_id, after)
            except redis.RedisError:
                entries = []
            for entry_id, kind, data in entries:
                yield _sse(kind, data, entry_id)
                after = entry_id
                if kind == "done":
                    return
            if entries:
                continue
            if check_row:
                # An expired (or lost) stream of a finished job: its final state from the row.
                check_row = False
                if (final := _final_state(job_id)) is not None:
                    yield _sse("done", final[1], final[0])
                    return
            if not woken.wait(max(0.0, beat - time.monotonic())):
                yield ": heartbeat\n\n"
                lease.renew()
                check_row = True
                beat = time.monotonic() + HEARTBEAT_SECONDS


def _row_events(job_id, after_version: int | None, lease: StreamLease):
    """Any other job's `progress` at each change of its row, and `done`; ids are the row's version."""
    seen = -1 if after_version is None else after_version
    with hub.watch(job_id) as woken:
        yield "retry: 1000\n\n"
        beat = time.monotonic() + HEARTBEAT_SECONDS
        while True:
            woken.clear()
            with new_session() as session:
                row = session.execute(select(Job.status, Job.progress, Job.progress_message, Job.version,
                                             Job.error_code, Job.error_message).where(Job.id == job_id)).one_or_none()
            if row is None:
                yield _sse("done", {"status": "deleted"}, f"p{seen + 1}")
                return
            if row.status in TERMINAL:  # (also to a client that saw this version: it closes)
                data = {"status": row.status}
                if row.error_code:
                    data["error"] = {"code": row.error_code, "message": row.error_message}
                yield _sse("done", data, f"p{row.version}")
                return
            if row.version > seen:
                seen = row.version
                yield _sse("progress", {"status": row.status, "progress": row.progress,
                                        "message": row.progress_message}, f"p{row.version}")
            if not woken.wait(max(0.0, beat - time.monotonic())):
                yield ": heartbeat\n\n"
                lease.renew()
                beat = time.monotonic() + HEARTBEAT_SECONDS
