"""JSON errors everywhere: `{"code", "message", "errors"}`, never HTML, never a stack trace."""
from __future__ import annotations

import json
import logging
import time

from flask import Flask, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.jobs import JobError

log = logging.getLogger(__name__)

# Stable codes for the errors werkzeug and flask-smorest raise themselves.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error answer: raise it anywhere in a view."""

    def __init__(self, status: int, code: str, message: str, *, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, errors: dict | None = None, headers: dict | None = None):
    body = {"code": code, "message": message}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _smorest_field_errors(exc: HTTPException) -> dict | None:
    """flask-smorest puts marshmallow's messages under exc.data["messages"][location]."""
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if not messages:
        return None
    # One location per request in practice (json, query, headers): flatten it to
    # {field: [..]}. A location whose messages are a bare list (webargs' "Invalid JSON
    # body.") stays keyed by the location, so `errors` is always an object.
    if len(messages) == 1:
        only = next(iter(messages.values()))
        if isinstance(only, dict):
            return only
    return messages


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    message = data.get("message") or exc.description or exc.name
    headers = {}
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    if status == 429:
        message = f"Too many requests ({exc.description}); retry after the Retry-After header's seconds."
        headers["Retry-After"] = str(_seconds_until_limit_resets())
    if status == 413 and request and request.max_content_length:
        message = f"The request body is larger than the {request.max_content_length} bytes allowed."
    if status == 422:
        message = "The request did not pass validation; see errors."
    code = data.get("code") or HTTP_CODES.get(status, "error")
    if status == 400 and isinstance(getattr(exc, "exc", None), (json.JSONDecodeError, UnicodeDecodeError)):
        code, message = "invalid_json", "The request body is not valid JSON."
    return error_response(status, code, message, _smorest_field_errors(exc), headers)


def _seconds_until_limit_resets() -> int:
    """When the breached rate limit lets the client in again (limiter headers are off,
    because they would overwrite the poll hint in a 202's Retry-After)."""
    limiter = current_app.extensions.get("assistant_limiter")
    current = limiter.current_limit if limiter is not None else None
    if current is None:
        return 1
    return max(1, int(current.reset_at - time.time()) + 1)


BODY_METHODS = ("POST", "PUT", "PATCH")


def check_request_body():
    """Refuse an oversized or non-JSON body before any view reads it (or silently ignores it).

    Without this, a form-encoded body reaches webargs as "no JSON" and the client is told
    that every required field is missing; and a body no view reads is never measured
    against MAX_CONTENT_LENGTH.
    """
    if request.routing_exception is not None:
        return None  # the 404 or 405 says more than a complaint about the body would
    length = request.content_length
    if length is not None and request.max_content_length is not None and length > request.max_content_length:
        raise RequestEntityTooLarge()
    chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    if request.method in BODY_METHODS and (length or chunked) and not request.is_json:
        return error_response(415, "unsupported_media_type",
                              "Send the body as JSON, with Content-Type: application/json.")
    return None


def _user_vanished(exc: Exception) -> bool:
    """A write that failed because the caller's account was deleted after this request was
    authenticated (account.delete ran meanwhile): its foreign key to users found no row."""
    from flask import g
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm.exc import ObjectDeletedError

    user = g.get("user")
    if not isinstance(exc, (IntegrityError, ObjectDeletedError)) or user is None:
        return False
    from sqlalchemy import inspect

    from api.db import get_db
    from shared.models import User

    # From the identity map (or the token's Principal): no load of a row that may be gone.
    user_id = inspect(user).identity[0] if isinstance(user, User) else user.id
    session = get_db()
    session.rollback()
    return session.scalar(select(User.id).where(User.id == user_id)) is None


def register_error_handlers(app: Flask) -> None:
    """Install after flask-smorest's Api, so these replace its handler."""
    app.before_request(check_request_body)

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.errors, exc.headers)

    @app.errorhandler(JobError)
    def _job_error(exc: JobError):
        # A refusal may know when it lifts (the AI budget: the user's next midnight).
        retry_after = getattr(exc, "retry_after", None) or 5
        headers = {"Retry-After": str(int(retry_after))} if exc.status in (429, 503) else None
        return error_response(exc.status, exc.code, exc.message, exc.errors, headers)

    app.register_error_handler(HTTPException, handle_http_exception)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return handle_http_exception(exc)
        from redis import RedisError
        from sqlalchemy.exc import OperationalError
        from sqlalchemy.exc import TimeoutError as PoolTimeout

        if _user_vanished(exc):
            return error_response(401, "invalid_token", "The access token's user no longer exists.",
                                  headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if isinstance(exc, PoolTimeout):
            # Every pooled connection is busy (a crowd arriving at once): come back, not a 500.
            log.warning("database pool exhausted: %s", exc)
            return error_response(503, "busy", "The server is busy; retry shortly.", headers={"Retry-After": "2"})
        if isinstance(exc, (OperationalError, RedisError)) or _connection_lost(exc):
            log.error("dependency unavailable: %s", exc)
            return error_response(503, "unavailable", "A backing service is unavailable; retry shortly.",
                                  headers={"Retry-After": "5"})
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.")


def _connection_lost(exc: Exception) -> bool:
    """A database connection that died under the request (a failover, a reset): retry, not a 500."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, PendingRollbackError

    # psycopg2 says InterfaceError ("connection already closed") for a socket found dead on a
    # second use, and a session whose connection died mid-transaction refuses the next statement.
    return isinstance(exc, (InterfaceError, PendingRollbackError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)
