"""The status page from the operator's side: `assistant status show` and `assistant status incident ...`."""
from __future__ import annotations

import json
import uuid

import click

from shared.db import session_scope


@click.group()
def status() -> None:
    """The public status page: its state, and incidents."""


def _forget_cached() -> None:
    from shared import status as service
    from shared.redis_clients import cache_redis

    service.forget_cached(cache_redis())  # the page shows the change now, not in 15 s


@status.command("show")
def status_show() -> None:
    """The page as GET /v1/status answers it, computed now."""
    from shared import status as service
    from shared.db import new_session
    from shared.redis_clients import cache_redis
    from shared.settings import get_settings

    click.echo(json.dumps(service.compute(settings=get_settings(), session_factory=new_session,
                                          redis_client=cache_redis(), broker_ok=service.broker_answers), indent=2))


@status.group()
def incident() -> None:
    """Open, update and resolve incidents (and maintenance notices)."""


@incident.command("open")
@click.argument("title")
@click.option("--component", required=True, help="api, jobs.<queue>, schedules, google, ai or notifications")
@click.option("--severity", type=click.Choice(["minor", "major", "critical", "maintenance"]), default="minor",
              show_default=True)
@click.option("--message", default="", help="the first update (default: the title)")
def incident_open(title: str, component: str, severity: str, message: str) -> None:
    """Post an incident on the status page; prints its id."""
    from shared import status as service

    if component not in service.COMPONENTS:
        raise click.UsageError(f"--component must be one of {', '.join(service.COMPONENTS)}")
    if not title.strip() or len(title) > 200:
        raise click.UsageError("TITLE must be 1-200 characters")
    with session_scope() as session:
        made = service.open_incident(session, title=title.strip(), component=component, severity=severity,
                                     message=message)
        incident_id = made.id
    _forget_cached()
    click.echo(str(incident_id))


def _update(incident_id: uuid.UUID, message: str, resolve: bool) -> None:
    from shared import status as service
    from shared.models import StatusIncident

    with session_scope() as session:
        found = session.get(StatusIncident, incident_id)
        if found is None:
            raise click.ClickException("no such incident")
        if found.resolved_at is not None:
            raise click.ClickException("that incident is resolved already")
        service.update_incident(session, found, message=message, resolve=resolve)
    _forget_cached()
    click.echo(f"{incident_id} {'resolved' if resolve else 'updated'}")


@incident.command("update")
@click.argument("incident_id", type=click.UUID)
@click.argument("message")
def incident_update(incident_id: uuid.UUID, message: str) -> None:
    """Add an update to an open incident."""
    _update(incident_id, message, resolve=False)


@incident.command("resolve")
@click.argument("incident_id", type=click.UUID)
@click.option("--message", default="Resolved.", show_default=True)
def incident_resolve(incident_id: uuid.UUID, message: str) -> None:
    """Resolve an incident (it stays in the 90 days' history)."""
    _update(incident_id, message, resolve=True)
