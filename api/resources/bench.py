"""The baseline `make bench` measures the api against: authenticated, and nothing else.

Registered only with BENCH_ENDPOINTS=true.
"""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from api.security import auth_required

blp = Blueprint("bench", __name__, url_prefix="/bench", description="Benchmark baseline (off in production).")


@blp.route("/noop")
class Noop(MethodView):
    decorators = [auth_required()]

    def get(self):
        """Authenticate the caller and answer; the cost every endpoint pays."""
        return {"ok": True}
