"""Request ids, request metrics, /metrics and Sentry for the api.

Each request gets an id (the caller's X-Request-ID when it is sane, else a new one),
echoed in the response and bound to every log line of the request, with the caller's
user id; both travel on to the worker in the messages this request publishes
(shared.telemetry). Request metrics are labelled by the route rule
(`/v1/jobs/<uuid:job_id>`), never the raw path, so their cardinality stays bounded.
"""
from __future__ import annotations

import time

from flask import Flask, Response, g, request
from flask.views import MethodView
from flask_smorest import Blueprint

from shared import metrics
from shared.logging import REQUEST_ID_HEADER, bind_context, clear_context, configure_logging, new_request_id
from shared.settings import Settings
from shared.telemetry import init_sentry

UNMATCHED = "<unmatched>"  # 404s: one label value for every path that matches no route

blp = Blueprint("metrics", __name__, description="Prometheus metrics.")


@blp.route("/metrics")
class Metrics(MethodView):
    def get(self):
        """Prometheus metrics of every api process, and the queue depths sampled now."""
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
    return response


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
