"""Liveness and readiness probes."""
from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from api.db import get_db
from api.errors import error_response
from api.security import current_settings
from shared.celery_app import app as celery_app

blp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


@blp.route("/health")
class Health(MethodView):
    def get(self):
        """The process is alive (no dependency is checked)."""
        return {"status": "ok"}


@blp.route("/ready")
class Ready(MethodView):
    def get(self):
        """The database, the broker and the rate-limit store answer; 503 names the one that does not."""
        checks = {"database": _check_database(), "broker": _check_broker()}
        states = {name: "ok" if ok else "down" for name, ok in checks.items()}
        states["rate_limits"] = _rate_limit_store()
        down = [name for name, state in states.items() if state == "down"]
        if down:
            return error_response(503, "not_ready", f"Unavailable: {', '.join(down)}.",
                                  errors={"checks": states}, headers={"Retry-After": "5"})
        return {"status": "ok", "checks": states}


def _check_database() -> bool:
    try:
        get_db().execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _check_broker() -> bool:
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:
        return False


def _rate_limit_store() -> str:
    """"ok" (Redis answers), "down", "memory" (counted per process: one machine only) or "off"."""
    settings = current_settings()
    if not settings.rate_limit_enabled:
        return "off"
    if not settings.ratelimit_storage_url.startswith(("redis", "unix")):
        return "memory"
    # Without it limits would silently be counted in each process's memory meanwhile.
    return "ok" if current_app.extensions["assistant_limiter"].storage.check() else "down"
