"""What approving a proposed action will do, rendered from its params by code.

The model's summary of its own proposal is what an attacker steering it would write, so
the approval card shows this instead: every recipient, the whole body, each link with its
host, recipients the user never wrote to, an event's attendees, a task before and after.
"""
from __future__ import annotations

from email.utils import getaddresses, parseaddr

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from shared.models import MailMessage, Task, User
from shared.safety import email_domain, links_in
from shared.todos import task_to_dict

TASK_FIELDS = ("title", "notes", "due_at", "priority", "tags", "done")


def sent_correspondents(session: Session, user: User, limit: int = 2000) -> set[str]:
    """Addresses the user sent mail to (To of their SENT mail), lower case.

    Only the user's own sent mail counts: an attacker's mail is synced too, so "appears in
    synced mail" would let any sender make their own address look known.
    """
    rows = session.scalars(
        select(MailMessage.recipients)
        .where(MailMessage.user_id == user.id, cast(MailMessage.labels, String).like('%"SENT"%'))
        .order_by(MailMessage.date.desc()).limit(limit)
    )
    return {address.lower() for recipients in rows for address in (recipients or []) if "@" in address}


def correspondent_domains(session: Session, user: User) -> set[str]:
    return {email_domain(address) for address in sent_correspondents(session, user)} - {""}


def _addresses(values) -> list[str]:
    return [address for _name, address in getaddresses([str(v) for v in values or []]) if address]


def task_snapshot(task: Task) -> dict:
    full = task_to_dict(task)
    return {key: full[key] for key in ("id", *TASK_FIELDS)}


def render(*, session: Session, user: User, kind: str, params: dict) -> dict:
    """The preview of `kind` with `params` for `user` (reads the task a tasks.* action targets)."""
    if kind == "mail.create_draft":
        known = sent_correspondents(session, user)
        to, cc = _addresses(params.get("to")), _addresses(params.get("cc"))
        return {"to": to, "cc": cc, "subject": params.get("subject", ""), "body": params.get("body", ""),
                "links": links_in(params.get("body", "")),
                "unknown_recipients": [a for a in [*to, *cc] if a.lower() not in known]}
    if kind == "calendar.create_event":
        known = sent_correspondents(session, user)
        attendees = _addresses(params.get("attendees"))
        description = params.get("description", "")
        return {"event": {"start": params.get("start"), "end": params.get("end"),
                          "timezone": params.get("timezone"), "title": params.get("summary", ""),
                          "description": description, "location": params.get("location", ""),
                          "attendees": attendees},
                "links": links_in(f"{description}\n{params.get('location', '')}"),
                "unknown_recipients": [a for a in attendees if a.lower() not in known]}
    if kind == "tasks.create":
        after = {key: params.get(key) for key in TASK_FIELDS if key in params}
        return {"task": {"before": None, "after": {**after, "done": False}},
                "links": links_in(f"{params.get('title', '')}\n{params.get('notes', '')}")}
    if kind in ("tasks.update", "tasks.complete"):
        task = session.scalar(select(Task).where(Task.id == params["task_id"], Task.user_id == user.id))
        before = task_snapshot(task) if task is not None else None
        changes = ({key: params[key] for key in TASK_FIELDS if key in params} if kind == "tasks.update"
                   else {"done": True})
        after = {**(before or {}), **changes}
        return {"task": {"before": before, "after": after},
                "links": links_in(f"{changes.get('title', '')}\n{changes.get('notes', '')}")}
    if kind == "memories.create":
        return {"memory": {"text": params.get("text", "")}, "links": links_in(params.get("text", ""))}
    return {}


def sender_address(sender: str) -> str:
    return (parseaddr(sender)[1] or sender).lower()
