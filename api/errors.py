"""JSON errors everywhere: `{"code", "message", "errors"}`, never HTML, never a stack trace."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

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
    # One location per request in practice (json, query, headers): flatten it.
    if len(messages) == 1:
        return next(iter(messages.values()))
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
    if status == 422:
        message = "The request did not pass validation; see errors."
    return error_response(status, data.get("code") or HTTP_CODES.get(status, "error"), message,
                          _smorest_field_errors(exc), headers)


def register_error_handlers(app: Flask) -> None:
    """Install after flask-smorest's Api, so these replace its handler."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.errors, exc.headers)

    @app.errorhandler(JobError)
    def _job_error(exc: JobError):
        headers = {"Retry-After": "5"} if exc.status in (429, 503) else None
        return error_response(exc.status, exc.code, exc.message, exc.errors, headers)

    app.register_error_handler(HTTPException, handle_http_exception)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return handle_http_exception(exc)
        from sqlalchemy.exc import OperationalError
        from redis import RedisError

        if isinstance(exc, (OperationalError, RedisError)):
            log.error("dependency unavailable: %s", exc)
            return error_response(503, "unavailable", "A backing service is unavailable; retry shortly.",
                                  headers={"Retry-After": "5"})
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Something went wrong on our side.")
