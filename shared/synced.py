"""Synced Google data (events, mail, the integration), in the shapes apps rely on."""
from __future__ import annotations

from datetime import datetime

from shared.models import CalendarEvent, GoogleIntegration, MailMessage


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def event_to_dict(event: CalendarEvent) -> dict:
    return {
        "id": str(event.id),
        "summary": event.summary,
        "description": event.description,
        "start": _iso(event.start_at),
        "end": _iso(event.end_at),
        "all_day": event.all_day,
        "location": event.location,
        "attendees": list(event.attendees or []),
        "status": event.status,
        "html_link": event.html_link,
    }


def message_to_dict(message: MailMessage) -> dict:
    return {
        "id": str(message.id),
        "thread_id": message.thread_id,
        "subject": message.subject,
        "from": message.sender,
        "to": list(message.recipients or []),
        "snippet": message.snippet,
        "labels": list(message.labels or []),
        "date": _iso(message.date),
    }


def integration_to_dict(integration: GoogleIntegration | None, *, configured: bool) -> dict:
    """What is connected and when each sync last finished; never a token."""
    if integration is None:
        return {"provider": "google", "configured": configured, "connected": False, "status": "disconnected",
                "scopes": [], "connected_at": None, "calendar_synced_at": None, "mail_synced_at": None,
                "last_error_code": None}
    return {
        "provider": "google",
        "configured": configured,
        "connected": integration.status == "connected",
        "status": integration.status,
        "scopes": list(integration.scopes or []),
        "connected_at": _iso(integration.connected_at),
        "calendar_synced_at": _iso(integration.calendar_synced_at),
        "mail_synced_at": _iso(integration.mail_synced_at),
        "last_error_code": integration.last_error_code,
    }
