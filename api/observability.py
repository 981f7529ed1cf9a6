"""Request ids, request metrics, /metrics and Sentry for the api.

Each request gets an id (the caller's X-Request-ID when it is sane, else a new one),
echoed in the response and bound to every log line of the request, with the caller's
user id; both travel on to the worker in the messages this request publishes
(shared.telemetry). Request metrics are labelled by the route rule
(`/v1/jobs/<uuid:job_id>`), never the raw path, so their cardinality stays bounded.
"""
from __future__ import annotations

import logging
import time

import redis
from flask import Flask, Response, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared import metrics, redis_clients
from shared.logging import REQUEST_ID_HEADER, bind_context, clear_context, configure_logging, new_request_id
from shared.settings import Settings
from shared.telemetry import init_sentry

UNMATCHED = "<unmatched>"  # 404s: one label value for every path that matches no route
ACTIVE_USERS_KEY = "metrics:active_users"  # a sorted set in the cache Redis: user id -> last seen
ACTIVE_WINDOW_SECONDS = 15 * 60
NOTE_EVERY_SECONDS = 60  # each process writes a user's "last seen" at most once a minute

log = logging.getLogger(__name__)
_noted: dict[str, float] = {}

blp = Blueprint("metrics", __name__, description="Prometheus metrics.")


@blp.route("/metrics")
class Metrics(MethodView):
    def get(self):
        """Prometheus metrics of every api process, and the queue depths sampled now."""
        _sample_backups()
        _sample_active_users()
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)


def _start_request() -> None:
    from api.security import user_id_from_token

    clear_context()
    g.request_id = new_request_id(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()
    bind_context(request_id=g.request_id, user_id=user_id_from_token())


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    if started is not None:
        endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        metrics.HTTP_REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        metrics.HTTP_REQUEST_DURATION.labels(request.method, endpoint).observe(time.perf_counter() - started)
    _note_active_user()
    return response


def _note_active_user() -> None:
    """Remember that the caller was active now, for `active_users` (throttled per process)."""
    from api.security import user_id_from_token

    user_id = user_id_from_token()
    if not user_id:
        return
    user_id, now = str(user_id), time.time()
    if now - _noted.get(user_id, 0) < NOTE_EVERY_SECONDS:
        return
    if len(_noted) > 100_000:
        _noted.clear()
    _noted[user_id] = now
    try:
        redis_clients.cache_redis().zadd(ACTIVE_USERS_KEY, {user_id: now})
    except redis.RedisError as exc:
        log.warning("active user not noted: %s", exc)


def _sample_active_users() -> None:
    now = time.time()
    try:
        with redis_clients.cache_redis().pipeline() as pipe:
            pipe.zremrangebyscore(ACTIVE_USERS_KEY, "-inf", now - ACTIVE_WINDOW_SECONDS)
            pipe.zcard(ACTIVE_USERS_KEY)
            count = pipe.execute()[1]
    except redis.RedisError as exc:
        log.warning("active users not sampled: %s", exc)
        return
    metrics.ACTIVE_USERS.labels("15m").set(count)


def _sample_backups() -> None:
    """The newest backup, the last passed verification and whether the latest one failed."""
    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from api.db import get_db
    from api.security import current_settings
    from shared.models import Backup
    from shared.storage import backup_storage

    storage = backup_storage(current_settings()).where()
    session = get_db()
    try:
        newest = session.scalar(select(func.max(Backup.created_at)))
        verified = session.scalar(select(func.max(Backup.verified_at)).where(Backup.verify_status == "ok"))
        latest = session.scalar(select(Backup.verify_status).where(Backup.verified_at.is_not(None))
                                .order_by(Backup.verified_at.desc()).limit(1))
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("backup metrics not sampled: %s", exc)
        return
    metrics.BACKUP_LAST_SUCCESS.labels(storage).set(newest.timestamp() if newest else 0)
    metrics.BACKUP_LAST_VERIFIED.labels(storage).set(verified.timestamp() if verified else 0)
    metrics.BACKUP_VERIFICATION_FAILED.labels(storage).set(1 if latest == "failed" else 0)


def _end_context(_exc=None) -> None:
    clear_context()


def init_app(app: Flask, settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    init_sentry(settings, flask=True)
    metrics.initialize_series()
    # First of the before_request hooks, so even a request refused by the body check or
    # the rate limiter has its id.
    app.before_request_funcs.setdefault(None, []).insert(0, _start_request)
    app.after_request(_finish_request)
    app.teardown_request(_end_context)
