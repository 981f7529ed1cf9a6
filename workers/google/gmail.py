"""Gmail sync (metadata only) and drafts, as plain functions of a session and a client."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from googleapiclient.errors import HttpError
from sqlalchemy import delete, select

from shared.models import GoogleIntegration, MailMessage
from shared.settings import Settings
from workers.google.auth import execute

PAGE_SIZE = 100
HEADERS = ["From", "To", "Subject", "Date"]
ACTION_HEADER = "X-Assistant-Action"  # marks our drafts, so a retry can find one already made
DRAFT_SCAN_LIMIT = 50


def _headers(payload: dict) -> dict[str, str]:
    return {h["name"].lower(): h.get("value", "") for h in (payload or {}).get("headers", [])}


def _date(message: dict, headers: dict) -> datetime:
    if message.get("internalDate"):
        return datetime.fromtimestamp(int(message["internalDate"]) / 1000, tz=timezone.utc)
    try:
        moment = parsedate_to_datetime(headers.get("date", ""))
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        return datetime.now(timezone.utc)


def apply_message(session, *, user_id, message: dict) -> str:
    """Insert or update our copy of one message's metadata."""
    headers = _headers(message.get("payload"))
    existing = session.scalar(select(MailMessage).where(MailMessage.user_id == user_id,
                                                        MailMessage.external_id == message["id"]))
    row = existing or MailMessage(user_id=user_id, external_id=message["id"])
    row.thread_id = message.get("threadId", "")
    row.subject = headers.get("subject", "")[:2048]
    row.sender = headers.get("from", "")[:1024]
    row.recipients = [address for _name, address in getaddresses([headers.get("to", "")]) if address]
    row.snippet = message.get("snippet", "")
    row.labels = list(message.get("labelIds", []))
    row.date = _date(message, headers)
    if existing is None:
        session.add(row)
    session.flush()
    return "inserted" if existing is None else "updated"


def _fetch(service, settings: Settings, message_id: str) -> dict | None:
    """A message's metadata, or None when it is gone."""
    try:
        return execute(service.users().messages().get(userId="me", id=message_id, format="metadata",
                                                      metadataHeaders=HEADERS),
                       api="gmail", settings=settings)
    except HttpError as exc:
        if exc.resp.status == 404:
            return None
        raise


def _full(session, service, settings: Settings, *, user_id, days: int, stats: dict, on_page=None) -> str:
    # The history id is read first: changes made while we list are then replayed next time.
    profile = execute(service.users().getProfile(userId="me"), api="gmail", settings=settings)
    seen: set[str] = set()
    page_token = None
    while True:
        response = execute(service.users().messages().list(userId="me", q=f"newer_than:{days}d",
                                                           maxResults=PAGE_SIZE, pageToken=page_token),
                           api="gmail", settings=settings)
        stats["pages"] += 1
        if on_page:
            on_page(stats["pages"])
        for ref in response.get("messages", []):
            message = _fetch(service, settings, ref["id"])
            if message is not None:
                outcome = apply_message(session, user_id=user_id, message=message)
                stats[outcome] = stats.get(outcome, 0) + 1
                seen.add(message["id"])
        page_token = response.get("nextPageToken")
        if not page_token:
            break
    # Messages gone from the window (or from Gmail) are dropped; the rest keep their ids.
    stale = [external_id for external_id in session.scalars(
        select(MailMessage.external_id).where(MailMessage.user_id == user_id)) if external_id not in seen]
    for start in range(0, len(stale), 500):
        session.execute(delete(MailMessage).where(MailMessage.user_id == user_id,
                                                  MailMessage.external_id.in_(stale[start:start + 500])))
    if stale:
        stats["deleted"] = stats.get("deleted", 0) + len(stale)
    return str(profile["historyId"])


def _incremental(session, service, settings: Settings, *, user_id, start: str, stats: dict, on_page=None) -> str:
    page_token = None
    latest = start
    while True:
        response = execute(service.users().history().list(userId="me", startHistoryId=start, maxResults=PAGE_SIZE,
                                                          pageToken=page_token),
                           api="gmail", settings=settings)
        stats["pages"] += 1
        if on_page:
            on_page(stats["pages"])
        for record in response.get("history", []):
            for added in record.get("messagesAdded", []):
                message = _fetch(service, settings, added["message"]["id"])
                if message is not None:
                    outcome = apply_message(session, user_id=user_id, message=message)
                    stats[outcome] = stats.get(outcome, 0) + 1
            for removed in record.get("messagesDeleted", []):
                result = session.execute(delete(MailMessage).where(
                    MailMessage.user_id == user_id, MailMessage.external_id == removed["message"]["id"]))
                stats["deleted"] = stats.get("deleted", 0) + result.rowcount
            for change in record.get("labelsAdded", []) + record.get("labelsRemoved", []):
                # The record carries the message's labels after the change.
                row = session.scalar(select(MailMessage).where(MailMessage.user_id == user_id,
                                                               MailMessage.external_id == change["message"]["id"]))
                if row is not None and "labelIds" in change["message"]:
                    row.labels = list(change["message"]["labelIds"])
                    stats["relabeled"] = stats.get("relabeled", 0) + 1
        latest = str(response.get("historyId") or latest)
        page_token = response.get("nextPageToken")
        if not page_token:
            return latest


def sync_mail(*, session, integration: GoogleIntegration, service, settings: Settings, full: bool,
              now: datetime, on_page=None) -> dict:
    """Bring our copy of the mailbox's recent metadata up to date; returns counts (no tokens).

    `on_page(n)` is called after each page fetched (the job reports progress; a cancel stops it).
    """
    stats = {"mode": "incremental", "pages": 0}
    history_id = None
    if integration.mail_history_id and not full:
        try:
            history_id = _incremental(session, service, settings, user_id=integration.user_id,
                                      start=integration.mail_history_id, stats=stats, on_page=on_page)
        except HttpError as exc:
            if exc.resp.status != 404:
                raise
            stats["resync_reason"] = "history_id_expired"  # 404: too old for history.list
            full = True
    else:
        full = True
    if full:
        stats["mode"] = "full"
        history_id = _full(session, service, settings, user_id=integration.user_id,
                           days=settings.google_mail_sync_days, stats=stats, on_page=on_page)
    integration.mail_history_id = history_id
    integration.mail_synced_at = now
    integration.last_error_code = None
    return stats


def build_raw(params: dict, key: str) -> str:
    message = EmailMessage()
    message["To"] = ", ".join(params["to"])
    message["Subject"] = params.get("subject", "")
    message[ACTION_HEADER] = key
    if params.get("in_reply_to"):
        message["In-Reply-To"] = params["in_reply_to"]
        message["References"] = params["in_reply_to"]
    message.set_content(params.get("body", ""))
    return base64.urlsafe_b64encode(message.as_bytes()).decode()


def find_draft(service, settings: Settings, key: str) -> str | None:
    """The id of a draft an earlier attempt made for `key` (its answer may have been lost)."""
    response = execute(service.users().drafts().list(userId="me", maxResults=DRAFT_SCAN_LIMIT),
                       api="gmail", settings=settings)
    for draft in response.get("drafts", []):
        full = execute(service.users().drafts().get(userId="me", id=draft["id"], format="metadata"),
                       api="gmail", settings=settings)
        if _headers(full.get("message", {}).get("payload")).get(ACTION_HEADER.lower()) == key:
            return draft["id"]
    return None


def create_draft(*, service, settings: Settings, key: str, params: dict) -> str:
    """Create the draft; no in-call retry, since a lost answer would make a second one."""
    body = {"message": {"raw": build_raw(params, key)}}
    if params.get("thread_id"):
        body["message"]["threadId"] = params["thread_id"]
    draft = execute(service.users().drafts().create(userId="me", body=body), api="gmail", settings=settings,
                    retries=0)
    return draft["id"]
