"""The status page: each component operational / degraded / down, open incidents, 90 days of history.

Computed at most once per CACHE_SECONDS and held in Redis, so a crowd refreshing /status during
an incident costs one computation, not one per visitor. Every input may be missing: a database
or Redis that does not answer makes the components that need it `down`, never an error.

Public output is states only: no queue depths, rates or worker names.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from shared.jobtypes import QUEUES
from shared.models import Job, StatusIncident, StatusSample, utcnow
from shared.settings import Settings

log = logging.getLogger(__name__)

OPERATIONAL, DEGRADED, DOWN = "operational", "degraded", "down"
RANK = {OPERATIONAL: 0, DEGRADED: 1, DOWN: 2}
CACHE_KEY = "status:page"
CACHE_SECONDS = 15
HISTORY_DAYS = 90
SEVERITIES = ("minor", "major", "critical", "maintenance")
# Outside services whose failure rate the workers count (count_call), and the queue that runs them.
SERVICES = {"google": "sync", "ai": "interactive", "notifications": "interactive"}
COMPONENTS = ("api", *(f"jobs.{q}" for q in QUEUES), "schedules", *SERVICES)
# The failure-rate window: minute buckets kept this long.
WINDOW_MINUTES = 10
MIN_CALLS = 5  # fewer calls than this in the window say nothing either way
DEGRADED_FAILURE_RATE = 0.5
_CALLS = "status:calls:{service}:{outcome}:{minute}"


def broker_answers() -> bool:
    """The broker accepts a connection within 2 s (what /ready checks)."""
    from shared.celery_app import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
        return True
    except Exception:  # noqa: BLE001 (kombu raises several kinds)
        return False


def worst(states) -> str:
    return max(states, key=RANK.__getitem__, default=OPERATIONAL)


# -- failure-rate counters the workers increment ------------------------------------------------


def count_call(service: str, ok: bool) -> None:
    """Count one call to an outside service (google, ai, notifications) for the status page; never raises."""
    import redis

    from shared.redis_clients import cache_redis

    key = _CALLS.format(service=service, outcome="ok" if ok else "error", minute=int(time.time() // 60))
    try:
        with cache_redis().pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, (WINDOW_MINUTES + 1) * 60)
            pipe.execute()
    except redis.RedisError as exc:  # the status page loses a sample; the call itself is unaffected
        log.debug("status call counter not written: %s", exc)


def failure_rates(client) -> dict[str, tuple[int, int]]:
    """(calls, failures) per service over the last WINDOW_MINUTES."""
    now = int(time.time() // 60)
    keys = [_CALLS.format(service=s, outcome=o, minute=m) for s in SERVICES for o in ("ok", "error")
            for m in range(now - WINDOW_MINUTES + 1, now + 1)]
    values = [int(v or 0) for v in client.mget(keys)]
    out, per = {}, 2 * WINDOW_MINUTES
    for i, service in enumerate(SERVICES):
        chunk = values[i * per:(i + 1) * per]
        ok, errors = sum(chunk[:WINDOW_MINUTES]), sum(chunk[WINDOW_MINUTES:])
        out[service] = (ok + errors, errors)
    return out


def service_state(calls: int, failures: int) -> str:
    if calls < MIN_CALLS:
        return OPERATIONAL
    if failures == calls:
        return DOWN
    return DEGRADED if failures / calls >= DEGRADED_FAILURE_RATE else OPERATIONAL


# -- computing the page -----------------------------------------------------------------------------


def _queue_waits(session: Session, now: datetime) -> dict[str, float]:
    """Seconds the oldest queued job of each queue has waited (as the admin panel's queues)."""
    waiting_since = func.coalesce(Job.enqueued_at, Job.created_at)
    rows = session.execute(select(Job.queue, func.min(waiting_since))
                           .where(Job.status == "queued", waiting_since <= now).group_by(Job.queue)).all()
    return {queue: (now - oldest).total_seconds() for queue, oldest in rows if oldest is not None}


def components(*, settings: Settings, session_factory, redis_client, broker_ok) -> dict[str, str]:
    """Each component's state now; what cannot be read counts as down, never as an error."""
    from shared import heartbeats

    now = utcnow()
    database_ok, waits = True, {}
    try:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
            waits = _queue_waits(session, now)
    except Exception as exc:  # noqa: BLE001 (any driver error: the database is what is down)
        log.warning("status: the database does not answer: %s", str(exc).splitlines()[0] if str(exc) else exc)
        database_ok = False
    redis_ok, workers, rates = True, [], {}
    try:
        workers = heartbeats.online()
        rates = failure_rates(redis_client)
    except Exception as exc:  # noqa: BLE001 (redis-py raises several kinds)
        log.warning("status: Redis does not answer: %s", exc)
        redis_ok = False
    broker = broker_ok()
    states = {"api": OPERATIONAL if database_ok and redis_ok else DOWN}
    served = {q for w in workers for q in w.get("queues", [])}
    for queue in QUEUES:
        if not (database_ok and broker):
            state = DOWN
        elif waits.get(queue, 0) > settings.status_queue_wait_degraded_seconds:
            state = DEGRADED  # a worker may be up, but users wait
        elif redis_ok and queue not in served:
            # No worker heartbeat for this queue: jobs are accepted and wait. Degraded, not
            # down: a worker restarting for a deploy is gone for a few seconds.
            state = DEGRADED
        else:
            state = OPERATIONAL
        states[f"jobs.{queue}"] = state
    states["schedules"] = states["jobs.maintenance"]  # beat's periodic work runs on the maintenance queue
    for service, queue in SERVICES.items():
        calls, failures = rates.get(service, (0, 0))
        states[service] = worst([service_state(calls, failures), states[f"jobs.{queue}"]])
    return states


def incident_to_dict(incident: StatusIncident) -> dict:
    return {"id": str(incident.id), "title": incident.title, "component": incident.component,
            "severity": incident.severity, "created_at": incident.created_at.isoformat(),
            "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
            "updates": incident.updates or []}


def _incidents_and_history(session_factory, today: str) -> tuple[list, list, dict]:
    since = utcnow() - timedelta(days=HISTORY_DAYS)
    try:
        with session_factory() as session:
            incidents = session.scalars(select(StatusIncident).where(
                (StatusIncident.resolved_at.is_(None)) | (StatusIncident.created_at >= since))
                .order_by(StatusIncident.created_at.desc()).limit(200)).all()
            open_ = [incident_to_dict(i) for i in incidents if i.resolved_at is None]
            past = [incident_to_dict(i) for i in incidents if i.resolved_at is not None]
            first_day = (utcnow() - timedelta(days=HISTORY_DAYS - 1)).date().isoformat()
            history: dict[str, dict[str, str]] = {}
            for sample in session.scalars(select(StatusSample).where(StatusSample.day >= first_day)):
                history.setdefault(sample.component, {})[sample.day] = sample.worst
            return open_, past, history
    except Exception as exc:  # noqa: BLE001
        log.warning("status: incidents not read: %s", exc)
        return [], [], {}


def compute(*, settings: Settings, session_factory, redis_client, broker_ok) -> dict:
    """The whole page as JSON-ready data."""
    states = components(settings=settings, session_factory=session_factory, redis_client=redis_client,
                        broker_ok=broker_ok)
    now = utcnow()
    today = now.date().isoformat()
    open_, past, history = _incidents_and_history(session_factory, today)
    for incident in open_:  # an operator's word outranks the measurements
        if incident["component"] in states and incident["severity"] in ("major", "critical"):
            states[incident["component"]] = worst([states[incident["component"]], DEGRADED])
    for name, state in states.items():
        history.setdefault(name, {})[today] = worst([history.get(name, {}).get(today, OPERATIONAL), state])
    return {
        "status": worst(states.values()),
        "components": [{"name": name, "status": state} for name, state in states.items()],
        "incidents": open_,
        "past_incidents": past,
        "history": {name: [{"day": day, "status": days[day]} for day in sorted(days)]
                    for name, days in history.items()},
        "updated_at": now.isoformat(),
    }


def current(*, settings: Settings, session_factory, redis_client, broker_ok) -> dict:
    """The page from Redis when computed in the last CACHE_SECONDS, else computed now (and kept)."""
    try:
        cached = redis_client.get(CACHE_KEY)
        if cached:
            return json.loads(cached)
    except Exception:  # noqa: BLE001 (Redis down: compute; components then say so)
        cached = None
    page = compute(settings=settings, session_factory=session_factory, redis_client=redis_client,
                   broker_ok=broker_ok)
    try:
        redis_client.set(CACHE_KEY, json.dumps(page), ex=CACHE_SECONDS)
    except Exception:  # noqa: BLE001
        pass
    return page


def forget_cached(redis_client) -> None:
    """Drop the cached page (an incident was just posted: show it at once)."""
    try:
        redis_client.delete(CACHE_KEY)
    except Exception:  # noqa: BLE001
        pass


# -- incidents and history (the CLI and beat) ---------------------------------------------------------


def open_incident(session: Session, *, title: str, component: str, severity: str, message: str = "") -> StatusIncident:
    now = utcnow()
    incident = StatusIncident(title=title, component=component, severity=severity, created_at=now,
                              updates=[{"at": now.isoformat(), "state": "open", "message": message or title}])
    session.add(incident)
    session.flush()
    return incident


def update_incident(session: Session, incident: StatusIncident, *, message: str, resolve: bool = False) -> None:
    now = utcnow()
    incident.updates = [*(incident.updates or []),
                        {"at": now.isoformat(), "state": "resolved" if resolve else "open", "message": message}]
    if resolve:
        incident.resolved_at = now


def sample(session: Session, page: dict, *, now: datetime | None = None) -> None:
    """Keep each component's worst state of today (beat calls it every few minutes); drop days past 90."""
    day = (now or datetime.now(timezone.utc)).date().isoformat()
    for component in page["components"]:
        row = session.get(StatusSample, (day, component["name"]))
        if row is None:
            session.add(StatusSample(day=day, component=component["name"], worst=component["status"]))
        else:
            row.worst = worst([row.worst, component["status"]])
    cutoff = ((now or datetime.now(timezone.utc)) - timedelta(days=HISTORY_DAYS)).date().isoformat()
    session.execute(StatusSample.__table__.delete().where(StatusSample.day < cutoff))
