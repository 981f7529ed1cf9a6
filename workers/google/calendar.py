"""Google Calendar sync and writes, as plain functions of a session and a client."""
from __future__ import annotations

import logging
import secrets
import uuid
from datetime import date, datetime, time, timedelta, timezone

from googleapiclient.errors import HttpError
from sqlalchemy import delete, select

from shared.google_oauth import channel_token_hash
from shared.models import CalendarEvent, GoogleIntegration
from shared.settings import Settings
from workers.google.auth import execute

log = logging.getLogger(__name__)

CALENDAR_ID = "primary"
WINDOW_BACK = timedelta(days=30)
WINDOW_AHEAD = timedelta(days=365)
PAGE_SIZE = 250
CHANNEL_TTL = timedelta(days=7)
RENEW_BEFORE = timedelta(days=1)


def _instant(value: dict) -> tuple[datetime, bool, str | None]:
    """(start as aware UTC, all day?, zone) from Google's {"dateTime"} or {"date"}."""
    if value.get("dateTime"):
        moment = datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc), False, value.get("timeZone")
    day = date.fromisoformat(value["date"])
    return datetime.combine(day, time(), tzinfo=timezone.utc), True, value.get("timeZone")


def _remote_updated(item: dict) -> datetime | None:
    raw = item.get("updated")
    return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


def apply_event(session, *, user_id, item: dict) -> str:
    """Insert, update or (when cancelled) delete our copy of one Google event."""
    existing = session.scalar(
        select(CalendarEvent).where(CalendarEvent.user_id == user_id, CalendarEvent.calendar_id == CALENDAR_ID,
                                    CalendarEvent.external_id == item["id"])
    )
    if item.get("status") == "cancelled":
        if existing is not None:
            session.delete(existing)
            return "deleted"
        return "ignored"
    if "start" not in item or "end" not in item:
        return "ignored"
    start, all_day, zone = _instant(item["start"])
    end, _, _ = _instant(item["end"])
    event = existing or CalendarEvent(user_id=user_id, calendar_id=CALENDAR_ID, external_id=item["id"])
    event.summary = (item.get("summary") or "")[:1024]
    event.description = item.get("description") or ""
    event.location = (item.get("location") or "")[:1024]
    event.start_at, event.end_at, event.all_day, event.timezone = start, end, all_day, zone
    event.attendees = [
        {"email": a.get("email"), "response_status": a.get("responseStatus")} for a in item.get("attendees") or []
    ]
    event.status = item.get("status") or "confirmed"
    event.html_link = item.get("htmlLink")
    event.remote_updated_at = _remote_updated(item)
    if existing is None:
        session.add(event)
    session.flush()
    return "inserted" if existing is None else "updated"


def _list_all(session, service, settings: Settings, *, user_id, stats: dict, seen: set | None = None,
              on_page=None, **query) -> str:
    """Page through events.list, applying each event (its id added to `seen`); return the nextSyncToken."""
    page_token = None
    while True:
        response = execute(
            service.events().list(calendarId=CALENDAR_ID, singleEvents=True, maxResults=PAGE_SIZE,
                                  pageToken=page_token, **query),
            api="calendar", settings=settings,
        )
        stats["pages"] += 1
        if on_page:
            on_page(stats["pages"])
        for item in response.get("items", []):
            outcome = apply_event(session, user_id=user_id, item=item)
            stats[outcome] = stats.get(outcome, 0) + 1
            if seen is not None:
                seen.add(item["id"])
        page_token = response.get("nextPageToken")
        if not page_token:
            return response.get("nextSyncToken")


def sync_calendar(*, session, integration: GoogleIntegration, service, settings: Settings, full: bool,
                  now: datetime, on_page=None) -> dict:
    """Bring our copy of the primary calendar up to date; returns counts (no tokens).

    `on_page(n)` is called after each page fetched (the job reports progress; a cancel stops it).
    """
    stats = {"mode": "incremental", "pages": 0}
    sync_token = None
    if integration.calendar_sync_token and not full:
        try:
            sync_token = _list_all(session, service, settings, user_id=integration.user_id, stats=stats,
                                   on_page=on_page, syncToken=integration.calendar_sync_token)
        except HttpError as exc:
            if exc.resp.status != 410:
                raise
            stats["resync_reason"] = "sync_token_expired"  # 410 Gone: Google wants a full sync
            full = True
    else:
        full = True
    if full:
        stats["mode"] = "full"
        seen: set[str] = set()
        sync_token = _list_all(
            session, service, settings, user_id=integration.user_id, stats=stats, seen=seen, on_page=on_page,
            timeMin=(now - WINDOW_BACK).isoformat(), timeMax=(now + WINDOW_AHEAD).isoformat(),
        )
        # The wipe: whatever the full listing did not return is gone. Done as upsert-then-sweep
        # rather than delete-then-insert, so events that survive keep their ids in our API.
        stale = _absent(session, integration.user_id, seen)
        if stale:
            stats["deleted"] = stats.get("deleted", 0) + len(stale)
    integration.calendar_sync_token = sync_token
    integration.calendar_synced_at = now
    integration.last_error_code = None
    return stats


def _absent(session, user_id, seen: set[str]) -> list[str]:
    """Delete the user's events whose Google id is not in `seen`; return those ids."""
    stale = [external_id for external_id in session.scalars(
        select(CalendarEvent.external_id).where(CalendarEvent.user_id == user_id,
                                                CalendarEvent.calendar_id == CALENDAR_ID)) if external_id not in seen]
    for start in range(0, len(stale), 500):
        session.execute(delete(CalendarEvent).where(CalendarEvent.user_id == user_id,
                                                    CalendarEvent.calendar_id == CALENDAR_ID,
                                                    CalendarEvent.external_id.in_(stale[start:start + 500])))
    return stale


def event_id_for(key: str) -> str:
    """Google event ids are base32hex (a-v, 0-9): a UUID's hex digits are, so the action's id is the event's."""
    return uuid.UUID(key).hex


def create_event(*, session, user_id, service, settings: Settings, key: str, params: dict) -> CalendarEvent:
    """Insert the event under an id derived from `key`; a retry finds it (409) instead of making a second."""
    event_id = event_id_for(key)
    zone = params.get("timezone")
    body = {
        "id": event_id,
        "summary": params["summary"],
        "description": params.get("description", ""),
        "location": params.get("location", ""),
        "start": {"dateTime": params["start"], **({"timeZone": zone} if zone else {})},
        "end": {"dateTime": params["end"], **({"timeZone": zone} if zone else {})},
        "attendees": [{"email": email} for email in params.get("attendees", [])],
    }
    try:
        item = execute(service.events().insert(calendarId=CALENDAR_ID, body=body), api="calendar", settings=settings)
    except HttpError as exc:
        if exc.resp.status != 409:
            raise
        # Made by an earlier attempt (or by an in-call retry whose first answer was lost).
        item = execute(service.events().get(calendarId=CALENDAR_ID, eventId=event_id), api="calendar",
                       settings=settings)
    apply_event(session, user_id=user_id, item=item)
    return session.scalar(select(CalendarEvent).where(CalendarEvent.user_id == user_id,
                                                      CalendarEvent.calendar_id == CALENDAR_ID,
                                                      CalendarEvent.external_id == item["id"]))


def ensure_channel(*, integration: GoogleIntegration, service, settings: Settings, now: datetime) -> str:
    """Keep a push channel (events.watch) open when GOOGLE_WEBHOOK_URL is set; says what it did.

    A channel about to expire is replaced by a new one; the old one is left to expire rather
    than stopped (its notifications find no channel of ours and are answered 404).
    """
    if not settings.google_webhook_url:
        return "off"
    expires = integration.calendar_channel_expires_at
    if integration.calendar_channel_id and expires and expires > now + RENEW_BEFORE:
        return "open"
    channel_id, token = uuid.uuid4().hex, secrets.token_urlsafe(32)
    body = {"id": channel_id, "type": "web_hook", "address": settings.google_webhook_url, "token": token,
            "params": {"ttl": str(int(CHANNEL_TTL.total_seconds()))}}
    try:
        answer = execute(service.events().watch(calendarId=CALENDAR_ID, body=body), api="calendar", settings=settings)
    except HttpError as exc:
        # Push is an optimization: the periodic sync still keeps the calendar fresh.
        log.warning("calendar push channel not opened: Google answered %s", exc.resp.status)
        return "failed"
    integration.calendar_channel_id = channel_id
    integration.calendar_channel_resource_id = answer.get("resourceId")
    integration.calendar_channel_token_hash = channel_token_hash(token)
    expiration = answer.get("expiration")
    integration.calendar_channel_expires_at = (
        datetime.fromtimestamp(int(expiration) / 1000, tz=timezone.utc) if expiration else now + CHANNEL_TTL
    )
    return "opened"
