"""Structured logs: one JSON object per line (LOG_FORMAT=json) or readable lines (console).

Every process (gunicorn and the api, Celery workers, beat, Flower's command) calls
`configure_logging`. Our code keeps using `logging.getLogger(__name__)`; structlog's
ProcessorFormatter renders those records and structlog's own alike, with the context of
the moment (`request_id`, `user_id`, `job_id`, bound with `bind_context`) and with
secrets redacted by `redact`, the last step before rendering.
"""
from __future__ import annotations

import logging
import logging.config
import re
import sys
import uuid

import structlog
from structlog.contextvars import bind_contextvars, clear_contextvars, get_contextvars

REDACTED = "[REDACTED]"

# Keys whose values are secrets wherever they appear (compared lowercased, "-" read as "_").
SECRET_KEYS = frozenset({
    "password", "new_password", "old_password", "current_password", "passwd",
    "token", "access_token", "refresh_token", "id_token", "auth_token", "ticket",
    "authorization", "proxy_authorization", "cookie", "set_cookie",
    "code", "client_secret", "secret", "secret_key", "jwt_secret", "api_key", "openai_api_key",
    "encryption_keys", "private_key", "basic_auth", "flower_basic_auth", "dsn", "sentry_dsn",
})
_SECRET_PARAMS = (
    "password", "access_token", "refresh_token", "id_token", "token", "code", "client_secret",
    "api_key", "key", "secret", "ticket",
)
# Patterns for secrets inside free text (messages, URLs, exception text).
_TEXT_PATTERNS = (
    # Authorization: Bearer <token> / Basic <credentials>
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + REDACTED),
    # A JWT anywhere (three base64url parts, the first a JSON header).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # name=value in query strings and form bodies, "name": "value" in JSON text.
    (re.compile(r"(?i)\b(%s)=[^&\s\"',;]+" % "|".join(_SECRET_PARAMS)), r"\1=" + REDACTED),
    (re.compile(r'(?i)"(%s)"\s*:\s*"[^"]*"' % "|".join(_SECRET_PARAMS + ("password", "authorization"))),
     r'"\1": "' + REDACTED + '"'),
    # Credentials in URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
)
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


# Names that end like these are secrets too: columns and SQL parameters are named after
# them (password_hash, refresh_token_encrypted, and token_hash_1 for a bound comparison).
_SECRET_SUFFIXES = ("password", "password_hash", "secret", "token", "token_hash", "_encrypted", "_key")
_BIND_NUMBER = re.compile(r"_\d+$")


def _is_secret_key(key) -> bool:
    if not isinstance(key, str):
        return False
    name = _BIND_NUMBER.sub("", key.lower().replace("-", "_"))
    return name in SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def redact_text(text: str) -> str:
    """`text` with bearer tokens, JWTs, secret query parameters and URL passwords removed."""
    for pattern, replacement in _TEXT_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value, depth: int = 0):
    """A copy of `value` with secrets redacted, recursing into dicts, lists and tuples."""
    if depth > 8:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: REDACTED if _is_secret_key(k) and v not in (None, "") else redact_value(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        # Header lists: [("Authorization", "Bearer ..."), ...]
        if all(isinstance(item, tuple) and len(item) == 2 for item in value) and value:
            return [(k, REDACTED if _is_secret_key(k) else redact_value(v, depth + 1)) for k, v in value]
        return [redact_value(item, depth + 1) for item in value]
    return value


def redact(_logger, _method, event_dict: dict) -> dict:
    """structlog processor: the last step before rendering, so nothing escapes it."""
    return redact_value(event_dict)


def new_request_id(incoming: str | None = None) -> str:
    """The caller's X-Request-ID when it is a sane token, else a fresh one."""
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def bind_context(**values) -> None:
    """Attach values (request_id, user_id, job_id...) to every log line of this context."""
    bind_contextvars(**{k: str(v) for k, v in values.items() if v is not None})


def clear_context() -> None:
    clear_contextvars()


def current_context() -> dict:
    return get_contextvars()


def _shared_processors() -> list:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(allow=("http", "task", "task_id", "outcome")),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def formatter(log_format: str) -> structlog.stdlib.ProcessorFormatter:
    """The formatter for every handler: JSON lines, or colourless console lines."""
    renderer = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "console"
        else structlog.processors.JSONRenderer(default=str)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
    )


_configured: tuple | None = None


def configure_logging(level: str | int | None = None, log_format: str | None = None) -> None:
    """Send every log record of this process, ours and libraries', through structlog to stderr."""
    global _configured
    from shared.settings import get_settings

    settings = get_settings()
    level = level or settings.log_level
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        level = level if isinstance(level, int) else logging.INFO
    log_format = log_format or settings.log_format
    if _configured == (level, log_format):
        return
    _configured = (level, log_format)

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            *_shared_processors()[1:],
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler._assistant = True
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_assistant", False):  # ours from an earlier call; others' stay (pytest's)
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries whose DEBUG lines would print connection details.
    for name in ("urllib3", "botocore", "kombu", "amqp"):
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    # Celery's "Task ... succeeded in" line says what shared.telemetry's "task finished" says (with
    # the job, the outcome and the seconds): a second line per task costs the worker CPU on every
    # job. Its errors and warnings stay.
    logging.getLogger("celery.app.trace").setLevel(max(level, logging.WARNING))


def get_logger(name: str | None = None):
    return structlog.get_logger(name)


# -- gunicorn ---------------------------------------------------------------------------

try:
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover - gunicorn is a dependency; this keeps imports light elsewhere
    _GunicornLogger = object


class GunicornLogger(_GunicornLogger):
    """gunicorn's error and access logs as structured lines (ops/gunicorn.conf.py).

    The access line carries the request id the api echoed in X-Request-ID, so nginx's
    log, this line and the worker's lines of the same request share one id.
    """

    def setup(self, cfg):
        super().setup(cfg)
        configure_logging(cfg.loglevel)
        fmt = formatter(_log_format())
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(fmt)

    def access(self, resp, req, environ, request_time):
        if not (self.cfg.accesslog or self.cfg.logconfig or self.cfg.syslog):
            return
        headers = dict((name.lower(), value) for name, value in (resp.headers or []))
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path = f"{path}?{environ['QUERY_STRING']}"
        http = {
            "method": environ.get("REQUEST_METHOD"),
            "path": path,
            "status": int(str(resp.status).split(" ", 1)[0]) if resp.status else None,
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "bytes": getattr(resp, "sent", None),
            "remote_addr": environ.get("REMOTE_ADDR"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "request_id": headers.get(REQUEST_ID_HEADER.lower()),
        }
        try:
            self.access_log.info("request", extra={"http": http})
        except Exception:  # a log line must never fail a request
            self.error_log.exception("access log failed")


def _log_format() -> str:
    from shared.settings import get_settings

    return get_settings().log_format
