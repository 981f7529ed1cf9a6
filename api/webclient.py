"""The web client's built files at /app/ (`make run`; nginx serves the same files in production).

Every path under /app/ that is not a file is one of the client's own routes (/app/admin,
/app/tasks, ...) and gets index.html. The page may load nothing from another host.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, redirect, send_from_directory
from werkzeug.security import safe_join

from api.errors import error_response
from api.security import current_settings

PREFIX = "/app"
# Everything from this origin, nothing from any other; no inline script or style.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
# Vite names what it builds under assets/ by content hash: a new build is a new name.
IMMUTABLE = "public, max-age=31536000, immutable"

blp = Blueprint("webclient", __name__)


def _root() -> Path:
    return current_settings().web_client_dir


def _secured(response, *, cache: str = "no-cache"):
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = cache
    return response


@blp.get(PREFIX)
def app_root():
    return redirect(f"{PREFIX}/", code=308)


@blp.get(f"{PREFIX}/")
@blp.get(f"{PREFIX}/<path:path>")
def app_file(path: str = ""):
    root = _root()
    if not (root / "index.html").is_file():
        return error_response(404, "web_client_not_built",
                              f"The web client is not built in {root}: `make run` builds it (cd clients/web && "
                              "npm ci && npm run build).")
    target = safe_join(str(root), path) if path else None
    if target and Path(target).is_file():
        cache = IMMUTABLE if path.startswith("assets/") else "no-cache"
        return _secured(send_from_directory(root, path, max_age=None), cache=cache)
    if path.startswith("assets/") or "." in path.rsplit("/", 1)[-1]:
        return error_response(404, "not_found", "No such file.")
    return _secured(send_from_directory(root, "index.html", max_age=None))


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)
