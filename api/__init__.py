"""The Flask api: it validates, writes job rows, enqueues, and reads. Nothing slow."""
from __future__ import annotations

import logging

from flask import Flask
from flask_compress import Compress
from flask_smorest import Api

from api import db, docs, errors, inputs, limits, observability, webclient
from api.resources import (
    actions,
    admin,
    artifacts,
    audit,
    auth,
    backups,
    bench,
    calendar,
    devices,
    health,
    integrations,
    job_batch,
    job_events,
    jobs,
    mail,
    me,
    memories,
    schedules,
    status,
    tasks,
    threads,
    webhooks,
)
from shared.settings import Settings, check_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the environment, then `.env`, checked).

    Unchecked settings raise ConfigurationError here: under gunicorn a worker that cannot
    load the app halts the arbiter, where a SystemExit would have it rebooted forever.
    """
    settings = settings or check_settings("api")
    app = Flask(__name__)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        JSON_SORT_KEYS=False,
        API_TITLE="Personal Assistant API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",  # Swagger UI at /docs is api.docs, not flask-smorest's CDN page
        API_SPEC_OPTIONS={
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            "security": [{"bearerAuth": []}],
            "info": {"description": "Submit jobs and poll them. Errors are JSON {code, message, errors}."},
        },
    )
    # gzip for JSON and HTML of 1 KB or more, when the client accepts it (phones on mobile
    # networks); zips, PNGs and other compressed bodies are sent as they are.
    app.config.update(
        COMPRESS_MIMETYPES=["application/json", "application/problem+json", "text/html", "text/css",
                            "text/javascript", "application/javascript", "image/svg+xml"],
        COMPRESS_MIN_SIZE=1024,
        COMPRESS_ALGORITHM=["gzip"],
        COMPRESS_ALGORITHM_STREAMING=["gzip"],  # files sent from disk (an artifact's HTML)
        COMPRESS_LEVEL=6,
        # The job endpoints answer If-None-Match themselves (api.resources.jobs).
        COMPRESS_EVALUATE_CONDITIONAL_REQUEST=False,
    )
    Compress(app)
    if settings.cors_origins:
        from flask_cors import CORS

        CORS(app, origins=list(settings.cors_origins), expose_headers=["ETag", "Location", "Retry-After"])

    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind nginx the peer is the proxy: take the client address (rate limits per IP)
        # from X-Forwarded-For, trusting only as many hops as there are proxies.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    api = Api(app)
    for blueprint in (
        health.blp, auth.blp, me.blp, jobs.blp, job_events.blp, job_batch.blp, tasks.blp, actions.blp, threads.blp, artifacts.blp,
        schedules.blp, backups.blp, integrations.blp, calendar.blp, mail.blp, observability.blp, admin.blp,
        devices.blp, webhooks.blp, audit.blp, status.blp, memories.blp,
    ):
        api.register_blueprint(blueprint)
    job_batch.register_components(api)
    docs.describe_results(api)  # after every blueprint: Job's schema exists once a route names it
    webclient.init_app(app)
    if settings.bench_endpoints:
        api.register_blueprint(bench.blp)
    app.register_blueprint(docs.blp)  # a page, not an operation: outside the OpenAPI document
    app.register_blueprint(status.page_blp)  # the public status page, also a page
    errors.register_error_handlers(app)  # after Api, to replace its HTML-free but differently shaped errors
    inputs.init_app(app)  # after the body's size and type are checked, before any view parses it
    limits.init_app(app, settings)
    observability.init_app(app, settings)  # last: its request hook must run first
    return app
