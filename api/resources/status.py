"""The public status page: GET /v1/status (JSON) and /status (HTML), no sign-in, never a 500."""
from __future__ import annotations

import html
import logging

from flask import Blueprint as FlaskBlueprint
from flask import current_app, make_response
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from shared import status

log = logging.getLogger(__name__)

blp = Blueprint("status", __name__, description="Public service status: components, incidents, history.")
page_blp = FlaskBlueprint("status_page", __name__)

LABELS = {"api": "API", "schedules": "Schedules and reminders", "google": "Google sync", "ai": "AI assistant",
          "notifications": "Notifications",
          **{f"jobs.{q}": f"Job processing ({q})" for q in ("interactive", "sync", "reports", "maintenance")}}


class ComponentSchema(Schema):
    name = fields.String()
    status = fields.String(metadata={"description": "operational | degraded | down"})


class IncidentUpdateSchema(Schema):
    at = fields.String()
    state = fields.String()
    message = fields.String()


class IncidentSchema(Schema):
    id = fields.String()
    title = fields.String()
    component = fields.String()
    severity = fields.String(metadata={"description": "minor | major | critical | maintenance"})
    created_at = fields.String()
    resolved_at = fields.String(allow_none=True)
    updates = fields.List(fields.Nested(IncidentUpdateSchema))


class DaySchema(Schema):
    day = fields.String()
    status = fields.String()


class StatusSchema(Schema):
    status = fields.String(metadata={"description": "the worst component's state"})
    components = fields.List(fields.Nested(ComponentSchema))
    incidents = fields.List(fields.Nested(IncidentSchema), metadata={"description": "open now"})
    past_incidents = fields.List(fields.Nested(IncidentSchema), metadata={"description": "resolved, last 90 days"})
    history = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(DaySchema)),
                          metadata={"description": "each component's worst state per UTC day, last 90 days"})
    updated_at = fields.String()


def current_status() -> dict:
    """The page (cached up to 15 s in Redis); whatever fails, every component down rather than an error."""
    from shared.db import new_session
    from shared.redis_clients import cache_redis

    settings = current_app.config["SETTINGS"]
    try:
        return status.current(settings=settings, session_factory=new_session, redis_client=cache_redis(),
                              broker_ok=status.broker_answers)
    except Exception:  # noqa: BLE001 (a status page that errors during an outage is no status page)
        log.exception("status page not computed")
        return {"status": status.DOWN, "components": [{"name": c, "status": status.DOWN} for c in status.COMPONENTS],
                "incidents": [], "past_incidents": [], "history": {}, "updated_at": None}


@blp.route("/v1/status")
class Status(MethodView):
    @blp.response(200, StatusSchema)
    def get(self):
        """Each component's state, open incidents and 90 days of history (no sign-in)."""
        return current_status()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30"><title>Service status</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:2em auto;padding:0 1em;color:#222}}
li{{list-style:none;padding:.4em 0;border-bottom:1px solid #eee;display:flex;justify-content:space-between}}
ul{{padding:0}} .operational{{color:#17692f}} .degraded{{color:#8a5a00}} .down{{color:#a11}}
.incident{{border-left:4px solid #8a5a00;padding:.2em 1em;margin:1em 0}}
.days{{display:flex;gap:1px}} .days span{{width:6px;height:18px;background:#3a3}}
.days .degraded{{background:#e0a100}} .days .down{{background:#c22}}
</style></head><body>
<h1>Service status</h1>
<p role="status" id="overall">Overall: <strong class="{overall}">{overall}</strong></p>
{incidents}
<h2>Components</h2>
<ul aria-label="Components">{components}</ul>
<h2>Last 90 days</h2>
{history}
<p><small>Updated {updated}. This page refreshes every 30 seconds.</small></p>
</body></html>
"""


def render(data: dict) -> str:
    e = html.escape
    components = "".join(
        f'<li><span>{e(LABELS.get(c["name"], c["name"]))}</span>'
        f'<strong class="{e(c["status"])}">{e(c["status"])}</strong></li>' for c in data["components"])
    incidents = "".join(
        f'<section class="incident" aria-label="Incident"><h2>{e(i["title"])}</h2>'
        f'<p>{e(i["severity"])} · {e(LABELS.get(i["component"], i["component"]))}</p>'
        + "".join(f'<p><small>{e(u["at"][:16].replace("T", " "))} UTC</small> {e(u["message"])}</p>'
                  for u in reversed(i.get("updates") or []))
        + "</section>" for i in data["incidents"])
    history = "".join(
        f'<p>{e(LABELS.get(name, name))}</p><div class="days">'
        + "".join(f'<span class="{e(d["status"])}" title="{e(d["day"])}: {e(d["status"])}"></span>' for d in days)
        + "</div>" for name, days in data["history"].items())
    return PAGE.format(overall=e(data["status"]), incidents=incidents, components=components, history=history,
                       updated=e((data.get("updated_at") or "never")[:19].replace("T", " ")))


@page_blp.route("/status")
def status_page():
    """The public status page (HTML, no script)."""
    response = make_response(render(current_status()))
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    # Fresh on every load: the 15 s cache is in Redis, shared, and dropped when an incident is posted.
    response.headers["Cache-Control"] = "no-cache"
    # No script, no outside resource: its one inline stylesheet is all it may load.
    response.headers["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
                                                   "form-action 'none'; frame-ancestors 'none'")
    return response
