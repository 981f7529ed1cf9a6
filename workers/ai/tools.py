"""The tools an agent may call, each acting on the job owner's data only.

Whose data is never the model's choice: every handler gets the owner from the job (in
`ToolContext`), and every query filters on that user; an id of someone else's row reads
as "not found". What an agent may do is fixed by its toolset (JobType.toolset), chosen by the
job type in code: text the tools return (mail, event descriptions) is passed back as
data and cannot add a tool. Side effects outside our database are never done here: the
propose_* tools record a ProposedAction that runs only after the user approves it.

The taint rule (in code, not in a prompt, because a steered model ignores prompts):
- Each tool declares `returns_untrusted`: whether its result carries text someone other
  than the user wrote (mail, event fields, sender names, anything fetched).
- A run is tainted from its start when its agent type says so (AGENTS below: mail.triage,
  mail.draft_reply) or its thread had a tainted turn, and becomes tainted the moment a
  `returns_untrusted` tool returns.
- In a tainted run every write is a proposal: a tool with `proposes` (create_task,
  update_task, complete_task) records a `tasks.*` ProposedAction instead of writing.
  Memories are always proposals; calendar and mail writes always were. Thread messages
  and usage rows are not writes.
- Untrusted results reach the model framed and cleaned (shared.safety.DataFramer); model
  text that is shown or saved is cleaned (shared.safety.OutputPolicy).
Each agent type's tools and why each is there: AGENTS below, and docs/agents.md.
"""
from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shared import previews
from shared.jobs import InvalidParams, validate_params
from shared.jobtypes import REGISTRY
from shared.models import CalendarEvent, MailMessage, ProposedAction, Task, User, utcnow
from shared.safety import DataFramer, OutputPolicy
from shared.todos import PRIORITIES
from shared.todos import complete_task as complete_task_service

MAX_ITEMS = 50
TEXT_LIMIT = 1000
WORKDAY = (time(9), time(18))  # free slots are looked for in these local hours


class ToolError(Exception):
    """A refusal the model gets back as the tool's result (it may try again)."""


@dataclass
class ToolContext:
    """What a handler acts for: the job's owner, never an argument of the model."""

    session: Session
    user: User
    job_id: uuid.UUID
    applied: list[dict] = field(default_factory=list)  # writes done in our database
    proposed: list[dict] = field(default_factory=list)  # actions awaiting approval
    # Rows added to the session only when the run has finished (see AgentRun.finish), so
    # a run that wrote nothing else holds no write transaction while the model thinks.
    pending: list = field(default_factory=list)
    wrote: bool = False  # a write was flushed: the transaction must stay open to the end
    tainted: bool = False  # the run has read third-party text: every write is a proposal
    framer: DataFramer = field(default_factory=DataFramer)
    # Links model text may keep (shown results), and links a draft body may keep.
    output: OutputPolicy = field(default_factory=OutputPolicy)
    draft_output: OutputPolicy = field(default_factory=OutputPolicy)
    thread_scope: str | None = None  # mail.draft_reply: the one mail thread read_thread reads
    seen: dict = field(default_factory=dict)  # id -> "task" | "message" | "event": ids the model saw

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.user.timezone or "UTC")


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    handler: Callable[[ToolContext, dict], dict]
    progress: str  # what the job says it is doing while this runs
    returns_untrusted: bool = False  # its result carries text other people wrote (the taint rule)
    # The handler writes to our database; in a tainted run this proposal kind is recorded instead.
    proposes: str | None = None

    def schema(self) -> dict:
        """The OpenAI function-calling definition."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _params(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def _clip(text: str | None, limit: int = TEXT_LIMIT) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + "…"


def _parse_time(value: str, zone: ZoneInfo, name: str) -> datetime:
    """ISO 8601; without an offset it is the user's local time."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ToolError(f"{name} must be an ISO 8601 date-time, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def _parse_date(value: str | None, zone: ZoneInfo) -> date:
    if not value:
        return utcnow().astimezone(zone).date()
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ToolError(f"date must be YYYY-MM-DD, got {value!r}") from None


def _uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# -- tasks -----------------------------------------------------------------------------


def _own_task(tc: ToolContext, task_id) -> Task:
    row_id = _uuid(task_id)
    task = tc.session.scalar(select(Task).where(Task.id == row_id, Task.user_id == tc.user.id)) if row_id else None
    if task is None:
        raise ToolError(f"No task with id {task_id!r}.")
    return task


def _task_brief(task: Task) -> dict:
    return previews.task_snapshot(task)


def _seen(tc: ToolContext, kind: str, items: list[dict]) -> list[dict]:
    for item in items:
        tc.seen[item["id"]] = kind
    return items


def list_tasks(tc: ToolContext, args: dict) -> dict:
    stmt = select(Task).where(Task.user_id == tc.user.id)
    status = args.get("status", "open")
    if status != "all":
        stmt = stmt.where(Task.done == (status == "done"))
    stmt = stmt.order_by(Task.due_at.is_(None), Task.due_at, Task.created_at).limit(args.get("limit", MAX_ITEMS))
    return {"tasks": _seen(tc, "task", [_task_brief(t) for t in tc.session.scalars(stmt)])}


def search_tasks(tc: ToolContext, args: dict) -> dict:
    pattern = f"%{args['query']}%"
    stmt = (
        select(Task)
        .where(Task.user_id == tc.user.id, or_(Task.title.ilike(pattern), Task.notes.ilike(pattern)))
        .order_by(Task.created_at.desc())
        .limit(MAX_ITEMS)
    )
    return {"tasks": _seen(tc, "task", [_task_brief(t) for t in tc.session.scalars(stmt)])}


def _task_fields(tc: ToolContext, args: dict) -> dict:
    if "repeat" in args:
        # How a task repeats is the user's to set (the repeat issue's rules); an agent never changes it.
        raise ToolError("An agent cannot set or change how a task repeats; the user does that in the app.")
    fields = {}
    for name in ("title", "notes"):
        if name in args:
            fields[name] = tc.output.clean(args[name])  # no hidden images or foreign links in a task
    if "priority" in args:
        fields["priority"] = args["priority"]
    if "tags" in args:
        fields["tags"] = list(dict.fromkeys(tag.lower() for tag in args["tags"]))
    if "due_at" in args:
        fields["due_at"] = _parse_time(args["due_at"], tc.zone, "due_at") if args["due_at"] else None
    return fields


def _task_params(fields: dict) -> dict:
    """Task fields as a proposal's JSON params."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()}


def create_task(tc: ToolContext, args: dict) -> dict:
    if tc.tainted:
        params = _task_params(_task_fields(tc, args))
        return propose(tc, "tasks.create", params, f"Create task: {params['title']}")
    task = Task(user_id=tc.user.id, timezone=tc.user.timezone, **_task_fields(tc, args))
    tc.session.add(task)
    tc.session.flush()
    tc.wrote = True
    tc.applied.append({"type": "task.created", "task_id": str(task.id), "title": task.title})
    return {"created": _task_brief(task)}


def update_task(tc: ToolContext, args: dict) -> dict:
    task = _own_task(tc, args["task_id"])
    if tc.tainted:
        params = {"task_id": str(task.id), **_task_params(_task_fields(tc, args))}
        return propose(tc, "tasks.update", params, f"Change task: {task.title}")
    for name, value in _task_fields(tc, args).items():
        setattr(task, name, value)
    tc.session.flush()
    tc.wrote = True
    tc.applied.append({"type": "task.updated", "task_id": str(task.id), "title": task.title})
    return {"updated": _task_brief(task)}


def complete_task(tc: ToolContext, args: dict) -> dict:
    task = _own_task(tc, args["task_id"])
    if tc.tainted:
        return propose(tc, "tasks.complete", {"task_id": str(task.id)}, f"Complete task: {task.title}")
    if complete_task_service(session=tc.session, task=task, now=utcnow()):
        tc.wrote = True
        tc.applied.append({"type": "task.completed", "task_id": str(task.id), "title": task.title})
    return {"completed": _task_brief(task)}


# -- calendar --------------------------------------------------------------------------


def _events_between(tc: ToolContext, start: datetime, end: datetime) -> list[CalendarEvent]:
    stmt = (
        select(CalendarEvent)
        .where(CalendarEvent.user_id == tc.user.id, CalendarEvent.start_at < end, CalendarEvent.end_at > start,
               CalendarEvent.status != "cancelled")
        .order_by(CalendarEvent.start_at)
        .limit(MAX_ITEMS)
    )
    return list(tc.session.scalars(stmt))


def _event_brief(event: CalendarEvent, zone: ZoneInfo) -> dict:
    return {
        "id": str(event.id),
        "summary": _clip(event.summary, 200),
        "description": _clip(event.description),
        "start": event.start_at.astimezone(zone).isoformat(),
        "end": event.end_at.astimezone(zone).isoformat(),
        "all_day": event.all_day,
        "location": _clip(event.location, 200),
    }


def _day_bounds(tc: ToolContext, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=tc.zone)
    return start, start + timedelta(days=1)


def list_events(tc: ToolContext, args: dict) -> dict:
    day_start, day_end = _day_bounds(tc, _parse_date(None, tc.zone))
    start = _parse_time(args["start"], tc.zone, "start") if args.get("start") else day_start
    end = _parse_time(args["end"], tc.zone, "end") if args.get("end") else day_end
    if end <= start or end - start > timedelta(days=31):
        raise ToolError("end must be after start, and at most 31 days later.")
    events = [_event_brief(e, tc.zone) for e in _events_between(tc, start, end)]
    return {"timezone": tc.user.timezone, "events": _seen(tc, "event", events)}


def free_slots_of_day(tc: ToolContext, day: date, min_minutes: int = 30) -> list[dict]:
    """Gaps of at least `min_minutes` between the day's timed events, within WORKDAY."""
    window_start = datetime.combine(day, WORKDAY[0], tzinfo=tc.zone)
    window_end = datetime.combine(day, WORKDAY[1], tzinfo=tc.zone)
    busy = [(e.start_at, e.end_at) for e in _events_between(tc, window_start, window_end) if not e.all_day]
    slots, cursor = [], window_start
    for start, end in sorted(busy):
        if start > cursor and start - cursor >= timedelta(minutes=min_minutes):
            slots.append((cursor, start))
        cursor = max(cursor, end)
    if window_end - cursor >= timedelta(minutes=min_minutes):
        slots.append((cursor, window_end))
    return [
        {"start": s.astimezone(tc.zone).isoformat(), "end": e.astimezone(tc.zone).isoformat(),
         "minutes": int((e - s).total_seconds() // 60)}
        for s, e in slots
    ]


def free_slots(tc: ToolContext, args: dict) -> dict:
    day = _parse_date(args.get("date"), tc.zone)
    return {"date": day.isoformat(), "timezone": tc.user.timezone,
            "free_slots": free_slots_of_day(tc, day, args.get("min_minutes", 30))}


# -- mail ------------------------------------------------------------------------------


def _own_message(tc: ToolContext, message_id) -> MailMessage:
    row_id = _uuid(message_id)
    message = (tc.session.scalar(select(MailMessage).where(MailMessage.id == row_id, MailMessage.user_id == tc.user.id))
               if row_id else None)
    if message is None:
        raise ToolError(f"No message with id {message_id!r}.")
    return message


def mail_brief(message: MailMessage) -> dict:
    return {
        "id": str(message.id),
        "from": _clip(message.sender, 300),
        "subject": _clip(message.subject, 300),
        "snippet": _clip(message.snippet, 500),
        "labels": list(message.labels or []),
        "date": message.date.isoformat(),
    }


def search_mail(tc: ToolContext, args: dict) -> dict:
    stmt = select(MailMessage).where(MailMessage.user_id == tc.user.id)
    if args.get("query"):
        pattern = f"%{args['query']}%"
        stmt = stmt.where(or_(MailMessage.subject.ilike(pattern), MailMessage.sender.ilike(pattern),
                              MailMessage.snippet.ilike(pattern)))
    stmt = stmt.order_by(MailMessage.date.desc()).limit(args.get("limit", 20))
    return {"messages": _seen(tc, "message", [mail_brief(m) for m in tc.session.scalars(stmt)])}


def read_mail(tc: ToolContext, args: dict) -> dict:
    message = _own_message(tc, args["message_id"])
    # The synced row keeps the snippet in the clear; the full body (encrypted) is the
    # Google sync's to expose.
    _seen(tc, "message", [{"id": str(message.id)}])
    return {"message": mail_full(message)}


def mail_full(message: MailMessage) -> dict:
    return {**mail_brief(message), "to": list(message.recipients or []),
            "thread_id": message.thread_id, "text": _clip(message.snippet, 4000)}


def read_thread(tc: ToolContext, args: dict) -> dict:
    """The messages of the one thread a reply is drafted in (mail.draft_reply), oldest first."""
    if not tc.thread_scope:
        return {"messages": []}
    rows = tc.session.scalars(
        select(MailMessage).where(MailMessage.user_id == tc.user.id, MailMessage.thread_id == tc.thread_scope)
        .order_by(MailMessage.date).limit(20)
    )
    return {"messages": _seen(tc, "message", [mail_full(m) for m in rows])}


# -- proposals (approval before anything leaves our database) -------------------------


def propose(tc: ToolContext, kind: str, params: dict, summary: str) -> dict:
    """Record an action for the user to approve; params must fit `kind`'s job schema."""
    try:
        validate_params(REGISTRY[kind], params)
    except InvalidParams as exc:
        raise ToolError(f"Invalid {kind} proposal: {json.dumps(exc.errors)}") from None
    preview = previews.render(session=tc.session, user=tc.user, kind=kind, params=params)
    action = ProposedAction(id=uuid.uuid4(), user_id=tc.user.id, job_id=tc.job_id, kind=kind,
                            params=params, summary=summary[:500], preview=preview)
    tc.pending.append(action)
    proposed = {"action_id": str(action.id), "type": kind, "summary": action.summary, "params": params,
                "preview": preview}
    tc.proposed.append(proposed)
    return {"proposed": proposed, "note": "Not done yet: the user approves or rejects it."}


def propose_event(tc: ToolContext, args: dict) -> dict:
    start = _parse_time(args["start"], tc.zone, "start")
    end = _parse_time(args["end"], tc.zone, "end")
    if end <= start:
        raise ToolError("end must be after start.")
    params = {"summary": tc.output.clean(args["summary"]), "start": start.isoformat(), "end": end.isoformat(),
              "timezone": tc.user.timezone}
    if args.get("description"):
        params["description"] = tc.output.clean(args["description"])
    local = start.astimezone(tc.zone)
    return propose(tc, "calendar.create_event", params, f"{params['summary']} at {local:%a %H:%M}")


def _address(value: str) -> str:
    """A recipient as a bare address; anything else (a URL, a name alone) is refused."""
    address = parseaddr(value)[1]
    if not re.fullmatch(r"[^@\s/<>()\[\]\\,;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}", address or ""):
        raise ToolError(f"{value!r} is not an email address.")
    return address


def propose_draft(tc: ToolContext, args: dict) -> dict:
    params = {"to": [_address(value) for value in args["to"]], "subject": tc.draft_output.clean(args["subject"]),
              "body": tc.draft_output.clean(args["body"])}
    return propose(tc, "mail.create_draft", params, f"Draft to {len(args['to'])} recipient(s): {params['subject']}")


def propose_memory(tc: ToolContext, args: dict) -> dict:
    text = tc.output.clean(args["text"]).strip()
    if not text:
        raise ToolError("A memory needs some text.")
    return propose(tc, "memories.create", {"text": text[:500], "source": {"kind": "job", "id": str(tc.job_id)}},
                   f"Remember: {text}")


# -- the registry ----------------------------------------------------------------------

_DATE_TIME = {"type": "string", "description": "ISO 8601; without an offset it is the user's local time"}
_TASK_FIELDS = {
    "title": {"type": "string", "minLength": 1, "maxLength": 500},
    "notes": {"type": "string", "maxLength": 5000},
    "due_at": {"type": ["string", "null"], "description": "ISO 8601 date-time, or null for none"},
    "priority": {"type": "string", "enum": list(PRIORITIES)},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 20},
}

# Accepted only to be refused with a clear reason (_task_fields): agents never change `repeat`.
_REPEAT = {"repeat": {"description": "Not settable by an agent; always refused."}}

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("list_tasks", "List the user's tasks, soonest due first.",
             _params({"status": {"type": "string", "enum": ["open", "done", "all"]},
                      "limit": {"type": "integer", "minimum": 1, "maximum": MAX_ITEMS}}),
             list_tasks, "looking at your tasks"),
        Tool("search_tasks", "Find the user's tasks whose title or notes contain the text.",
             _params({"query": {"type": "string", "minLength": 1, "maxLength": 200}}, ("query",)),
             search_tasks, "looking at your tasks"),
        Tool("create_task", "Create a task for the user.", _params({**_TASK_FIELDS, **_REPEAT}, ("title",)),
             create_task, "updating your tasks", proposes="tasks.create"),
        Tool("update_task", "Change one of the user's tasks (not how it repeats).",
             _params({"task_id": {"type": "string"}, **_TASK_FIELDS, **_REPEAT}, ("task_id",)),
             update_task, "updating your tasks", proposes="tasks.update"),
        Tool("complete_task", "Mark one of the user's tasks done.",
             _params({"task_id": {"type": "string"}}, ("task_id",)), complete_task, "updating your tasks",
             proposes="tasks.complete"),
        Tool("list_events", "List the user's calendar events between start and end (default: today).",
             _params({"start": _DATE_TIME, "end": _DATE_TIME}), list_events, "reading your calendar",
             returns_untrusted=True),  # summaries, descriptions, locations: others write them (invites)
        # Only times: nothing anyone else wrote.
        Tool("free_slots", "Free time in the user's working hours on a day (default: today).",
             _params({"date": {"type": "string", "description": "YYYY-MM-DD"},
                      "min_minutes": {"type": "integer", "minimum": 5, "maximum": 600}}),
             free_slots, "reading your calendar"),
        Tool("search_mail", "Recent mail of the user, optionally matching text in subject, sender or snippet.",
             _params({"query": {"type": "string", "maxLength": 200},
                      "limit": {"type": "integer", "minimum": 1, "maximum": MAX_ITEMS}}),
             search_mail, "reading your mail", returns_untrusted=True),
        Tool("read_mail", "Read one of the user's mail messages.",
             _params({"message_id": {"type": "string"}}, ("message_id",)), read_mail, "reading your mail",
             returns_untrusted=True),
        Tool("read_thread", "Read the messages of the mail thread being replied to.",
             _params({}), read_thread, "reading your mail", returns_untrusted=True),
        Tool("propose_event", "Propose a calendar event; it is created only if the user approves.",
             _params({"summary": {"type": "string", "minLength": 1, "maxLength": 1024}, "start": _DATE_TIME,
                      "end": _DATE_TIME, "description": {"type": "string", "maxLength": 8192}},
                     ("summary", "start", "end")),
             propose_event, "planning time blocks"),
        Tool("propose_draft", "Propose a mail draft; it is saved only if the user approves.",
             _params({"to": {"type": "array", "items": {"type": "string", "minLength": 3, "maxLength": 320},
                             "minItems": 1, "maxItems": 20},
                      "subject": {"type": "string", "maxLength": 2048},
                      "body": {"type": "string", "maxLength": 100000}}, ("to", "subject", "body")),
             propose_draft, "drafting reply"),
        Tool("propose_memory", "Propose a short fact to remember about the user; kept only if the user approves.",
             _params({"text": {"type": "string", "minLength": 1, "maxLength": 500}}, ("text",)),
             propose_memory, "noting a memory"),
    )
}


@dataclass(frozen=True)
class AgentTools:
    """One agent type's place in the taint rule, and why each of its tools is there."""

    tainted_from_start: bool
    why: dict[str, str]


# The one table of the agents' tools (shared.jobtypes carries the same names as each job
# type's toolset; a test holds the two together). docs/agents.md says the same for people.
AGENTS: dict[str, AgentTools] = {
    "agent.assistant": AgentTools(False, {
        "list_tasks": "answers \"what's on my list\"",
        "search_tasks": "finds the task the user names",
        "create_task": "\"add milk to my list\" (a proposal once the run read mail or events)",
        "update_task": "\"move the report to Friday\" (a proposal once tainted; never `repeat`)",
        "complete_task": "\"I paid the rent\" (a proposal once tainted)",
        "list_events": "answers questions about the calendar (taints the run)",
        "free_slots": "finds time without reading anyone's text",
        "search_mail": "answers questions about mail (taints the run)",
        "read_mail": "reads the message the user asks about (taints the run)",
        "propose_event": "the user asks for a meeting or a block of time; always a proposal",
        "propose_draft": "the user asks to write someone; always a proposal",
        "propose_memory": "the user states a lasting fact; always a proposal",
    }),
    "agent.plan_day": AgentTools(False, {
        "list_tasks": "the tasks to fit into the day",
        "list_events": "what already fills the day (taints the run)",
        "free_slots": "where the blocks can go",
        "propose_event": "the plan's time blocks; always proposals",
    }),
    # Their input is mail: tainted before the model reads a word.
    "mail.triage": AgentTools(True, {
        "search_mail": "more of the messages being triaged",
        "read_mail": "one message's text, when the snippet is not enough",
    }),
    "mail.draft_reply": AgentTools(True, {
        "read_thread": "the thread being replied to, and nothing else of the mailbox",
        "free_slots": "a reply that proposes a time needs the user's free time",
    }),
}

_validators = {name: Draft202012Validator(tool.parameters) for name, tool in TOOLS.items()}


class Toolbox:
    """The tools of one agent run, bound to its owner; answers each tool-call id once."""

    def __init__(self, tc: ToolContext, names: tuple[str, ...]):
        self.tc = tc
        self.tools = {name: TOOLS[name] for name in names}
        self._answered: dict[str, str] = {}

    def schemas(self) -> list[dict]:
        return [tool.schema() for tool in self.tools.values()]

    def progress_message(self, name: str) -> str:
        tool = self.tools.get(name)
        return tool.progress if tool else "thinking"

    def call(self, call_id: str, name: str, arguments: str) -> str:
        """Run one tool call; the result (or the refusal) as text for the model."""
        if call_id in self._answered:
            # The model repeated a call it already made: its effect happened once.
            return self._answered[call_id]
        result = self._run(name, arguments)
        tool = self.tools.get(name)
        if tool is not None and tool.returns_untrusted and "error" not in result:
            # From here on this run's writes are proposals: the model has read text an
            # attacker may have written, and may be following it.
            self.tc.tainted = True
            answer = frame_result(self.tc.framer, name, result)
        else:
            answer = json.dumps(result, default=str)
        self._answered[call_id] = answer
        return answer

    def _run(self, name: str, arguments: str) -> dict:
        tool = self.tools.get(name)
        if tool is None:
            return {"error": f"There is no tool {name!r} here."}
        try:
            args = json.loads(arguments or "{}")
        except (TypeError, ValueError):
            return {"error": "The arguments are not valid JSON."}
        if not isinstance(args, dict):
            return {"error": "The arguments must be a JSON object."}
        errors = [e.message for e in _validators[name].iter_errors(args)]
        if errors:
            return {"error": "Invalid arguments: " + "; ".join(errors[:5])}
        try:
            with self.tc.session.begin_nested():  # a refused write leaves nothing behind
                result = tool.handler(self.tc, args)
                if tool.proposes and self.tc.tainted and "proposed" not in result:
                    # A guard behind the handlers: a tainted run never writes, whatever a handler does.
                    raise ToolError(f"{name} may only be proposed in this run.")
                return result
        except ToolError as exc:
            return {"error": str(exc)}


_SOURCES = {"messages": "mail", "message": "mail", "events": "calendar", "event": "calendar"}


def frame_result(framer: DataFramer, tool_name: str, result: dict) -> str:
    """A tool's result for the model: its third-party items each in a labelled data block."""
    blocks, rest = [], {}
    for key, value in result.items():
        source = _SOURCES.get(key)
        items = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
        if source is None or items is None:
            rest[key] = value
            continue
        for item in items:
            sender = item.get("from") or item.get("organizer")
            blocks.append(framer.block(item, source=source, sender=sender, id=item.get("id")))
    header = json.dumps({"tool": tool_name, "data_blocks": len(blocks), **framer.value(rest)}, default=str)
    return "\n".join([header, *blocks])
