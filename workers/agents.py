"""AI agents as jobs: the assistant, the day planner, mail triage and reply drafts.

Each task is a few lines over a service function (converse, plan_day, triage, draft_reply)
that runs the bounded tool loop with the toolset of its type. Writes to our own
database (tasks, thread messages, proposed actions) go through `ctx.session`, so they
commit together with the job's success and a job re-run after a worker died applies
them once. Nothing here leaves our database: calendar events and Gmail drafts are
proposed actions that the user approves (POST /v1/jobs/{id}/actions/{action_id}/approve).
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import date, timedelta
from email.utils import parseaddr
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.ai import estimated_cost
from shared.db import is_postgres
from shared.models import AgentThread, AiUsage, MailMessage, Task, ThreadMessage, User, utcnow
from shared.settings import get_settings
from workers.ai.client import LlmClient, Reply, Usage
from workers.ai.live import LiveOutput
from workers.ai.loop import DATA_NOTICE, run_tool_loop
from workers.ai.tools import Toolbox, ToolContext, free_slots_of_day, mail_brief, propose
from workers.job_runner import JobContext, JobFailed, job_task

HISTORY_TURNS = 20  # earlier thread messages sent along with a new one
TRIAGE_LABELS = ("needs-reply", "fyi", "low-priority")


class AgentRun:
    """One agent job's model, tools and token accounting."""

    def __init__(self, ctx: JobContext):
        self.ctx = ctx
        self.settings = get_settings()
        if not self.settings.openai_api_key:
            # Queued while the api had a key and this worker has none: say so, do not crash.
            raise JobFailed("ai_not_configured", "No AI provider is configured on the worker.")
        self.tc = ToolContext(session=ctx.session, user=ctx.user, job_id=ctx.job.id)
        self.toolbox = Toolbox(self.tc, ctx.job_type.toolset)
        self.usage = Usage()
        self.zone = ZoneInfo(ctx.user.timezone or "UTC")
        self.live = LiveOutput(ctx.job.id, attempt=ctx.attempt) if ctx.job_type.live_output else None

    @property
    def session(self):
        return self.ctx.session

    @property
    def user(self):
        return self.ctx.user

    def system_prompt(self, task: str) -> dict:
        now = utcnow().astimezone(self.zone)
        return {"role": "system", "content": (
            f"{task}\nNow is {now:%A %Y-%m-%d %H:%M} in the user's timezone {self.ctx.user.timezone}. "
            f"{DATA_NOTICE} Creating calendar events or mail drafts is only ever proposed; "
            "the user approves them."
        )}

    def run(self, messages: list[dict], *, stream_text: bool = False) -> str:
        """The tool loop; `stream_text`: the answer is free text the user reads as it is written
        (a reply, a draft's body), not JSON for us to parse."""
        live = self.live
        with LlmClient(self.settings, agent_type=self.ctx.job_type.name) as llm:
            result = run_tool_loop(
                llm=llm, messages=messages, toolbox=self.toolbox, usage=self.usage,
                max_steps=self.settings.ai_max_steps, max_tokens=self.settings.ai_max_tokens_per_job,
                on_reply=self._record_usage, on_progress=self.progress, before_call=self.release_reads,
                on_delta=live.delta if live and stream_text else None,
                on_tool=self._tool,
            )
        return result.content

    def progress(self, percent: int, message: str | None = None) -> None:
        self.ctx.progress(percent, message)
        if self.live:
            self.live.progress(percent, message)

    def _tool(self, phase: str, name: str, message: str) -> None:
        if self.live:
            self.live.tool(phase, name, message)
            self.live.actions(self.tc.proposed)

    def release_reads(self) -> None:
        """End the session's transaction before a slow model call if it only read.

        No connection then sits idle in a transaction while the model thinks, and on SQLite
        no write lock is held (which would stall the api). Once a tool wrote, the
        transaction stays open: those writes commit with the job's success or not at all.
        """
        session = self.ctx.session
        if session.in_transaction() and not (self.tc.wrote or session.new or session.dirty or session.deleted):
            session.commit()

    def finish(self) -> None:
        """Add the rows kept back during the run; they commit with the job's success."""
        self.ctx.session.add_all(self.tc.pending)
        if self.live:
            self.live.actions(self.tc.proposed)
            self.live.close()

    def _record_usage(self, reply: Reply) -> None:
        if self.live:
            self.live.answer_ended()
        usage = AiUsage(user_id=self.ctx.user.id, job_id=self.ctx.job.id, agent_type=self.ctx.job_type.name,
                        prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens)
        if self.ctx.session.in_transaction() and not is_postgres(self.ctx.session):
            # SQLite, after a tool wrote: the job's transaction holds the one write lock, so
            # the row goes with it (and is lost if the job fails; the embedded default is lenient).
            self.ctx.session.add(usage)
            return
        # Its own transaction: the tokens were spent even if this job fails later.
        with self.ctx.own_transaction() as session:
            session.add(usage)

    def usage_dict(self) -> dict:
        return {
            "model": self.settings.openai_model,
            "calls": self.usage.calls,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.total_tokens,
            **({"estimated": True} if self.usage.estimated else {}),
            "estimated_cost_usd": estimated_cost(self.usage.prompt_tokens, self.usage.completion_tokens,
                                                 self.settings),
        }

    def actions(self) -> dict:
        return {"applied_actions": self.tc.applied, "proposed_actions": self.tc.proposed}


# -- agent.assistant -------------------------------------------------------------------


def _thread(run: AgentRun, thread_id: str | None, message: str) -> AgentThread:
    """The thread named (the owner's only), or a new one (added at the end)."""
    if thread_id is None:
        return AgentThread(id=uuid.uuid4(), user_id=run.user.id, title=message[:80])
    thread = run.session.scalar(
        select(AgentThread).where(AgentThread.id == uuid.UUID(thread_id), AgentThread.user_id == run.user.id)
    )
    if thread is None:
        raise JobFailed("thread_not_found", "No such thread.")
    return thread


def _history(session: Session, thread: AgentThread) -> list[dict]:
    rows = session.scalars(
        select(ThreadMessage)
        .where(ThreadMessage.thread_id == thread.id)
        .order_by(ThreadMessage.created_at.desc(), ThreadMessage.id.desc())
        .limit(HISTORY_TURNS)
    ).all()
    return [{"role": row.role, "content": row.content} for row in reversed(rows)]


def _save_turn(run: AgentRun, thread: AgentThread, message: str, reply: str) -> None:
    now = utcnow()
    job_id, user_id = run.ctx.job.id, run.user.id
    run.session.add_all([
        thread,
        ThreadMessage(thread_id=thread.id, user_id=user_id, role="user", content=message,
                      job_id=job_id, created_at=now),
        # A distinct instant, so the reply sorts after the message it answers.
        ThreadMessage(thread_id=thread.id, user_id=user_id, role="assistant", content=reply,
                      job_id=job_id, created_at=now + timedelta(milliseconds=1)),
    ])
    thread.updated_at = now


def converse(*, run: AgentRun, message: str, thread_id: str | None = None) -> dict:
    """Answer the user's message in its thread (a new one without thread_id), with tools."""
    thread = _thread(run, thread_id, message)
    reply = run.run([
        run.system_prompt("You are the user's personal assistant. Use the tools to look at and "
                          "change their tasks, and to read their calendar and mail. Be brief."),
        *_history(run.session, thread),
        {"role": "user", "content": message},
    ], stream_text=True)
    run.finish()
    _save_turn(run, thread, message, reply)
    return {"thread_id": str(thread.id), "reply": reply, **run.actions(), "usage": run.usage_dict()}


@job_task("agent.assistant")
def assistant_task(ctx: JobContext) -> dict:
    """Answer the user's message with tools over their tasks, calendar and mail."""
    return converse(run=AgentRun(ctx), message=ctx.params["message"], thread_id=ctx.params.get("thread_id"))


# -- agent.plan_day --------------------------------------------------------------------


def _open_tasks(session: Session, user: User, zone: ZoneInfo) -> list[dict]:
    """The user's open tasks, soonest due first, as the model sees them."""
    tasks = session.scalars(
        select(Task).where(Task.user_id == user.id, Task.done.is_(False))
        .order_by(Task.due_at.is_(None), Task.due_at).limit(50)
    ).all()
    return [
        {"id": str(t.id), "title": t.title, "priority": t.priority,
         "due_at": t.due_at.astimezone(zone).isoformat() if t.due_at else None,
         "notes": t.notes[:300]}
        for t in tasks
    ]


def plan_day(*, run: AgentRun, day: date | None = None) -> dict:
    """Propose time blocks for open tasks in the free slots of `day` (default: the user's today)."""
    day = day or utcnow().astimezone(run.zone).date()
    run.progress(5, "reading your calendar")
    slots = free_slots_of_day(run.tc, day)
    run.progress(8, "looking at your tasks")
    open_tasks = _open_tasks(run.session, run.user, run.zone)
    summary = run.run([
        run.system_prompt(
            "You plan the user's day. Fit their open tasks into the free slots: urgent and high "
            "priority and soon-due tasks first; estimate how long each takes (from its title and "
            "notes; 30 minutes when unsure). Call propose_event once per time block, inside a free "
            "slot. Then answer with a short summary of the plan."
        ),
        {"role": "user", "content": json.dumps(
            {"date": day.isoformat(), "timezone": run.user.timezone, "free_slots": slots, "open_tasks": open_tasks}
        )},
    ])
    run.finish()
    return {"date": day.isoformat(), "timezone": run.user.timezone, "free_slots": slots,
            "summary": summary, **run.actions(), "usage": run.usage_dict()}


@job_task("agent.plan_day")
def plan_day_task(ctx: JobContext) -> dict:
    """Propose time blocks for open tasks in the free slots of the day."""
    day = ctx.params.get("date")
    return plan_day(run=AgentRun(ctx), day=date.fromisoformat(day) if day else None)


# -- mail.triage -----------------------------------------------------------------------


def _json_object(text: str) -> dict:
    """The JSON object in the model's answer (models like to wrap it in ``` fences)."""
    match = re.search(r"\{.*\}", text or "", re.DOTALL)
    try:
        value = json.loads(match.group(0)) if match else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise JobFailed("ai_bad_output", "The model's answer was not the JSON asked for.")
    return value


def _labelled(answer: dict, given: dict[str, MailMessage]) -> list[dict]:
    """The model's labels of the messages it was given; anything else it said is dropped."""
    labelled = []
    for item in answer.get("messages") or []:
        if not isinstance(item, dict):
            continue
        message = given.get(str(item.get("id")))  # ids not given to the model are dropped
        label = str(item.get("label", "")).strip().lower().replace("_", "-").replace(" ", "-")
        if message is None or label not in TRIAGE_LABELS:
            continue
        labelled.append({"id": str(message.id), "subject": message.subject, "from": message.sender,
                         "label": label, "reason": str(item.get("reason", "")).splitlines()[0][:300]
                         if item.get("reason") else ""})
    return labelled


def triage(*, run: AgentRun, limit: int = 20) -> dict:
    """Label the `limit` newest messages needs-reply / fyi / low-priority, with a reason each, and summarize."""
    run.progress(5, "reading your mail")
    rows = run.session.scalars(
        select(MailMessage).where(MailMessage.user_id == run.user.id)
        .order_by(MailMessage.date.desc()).limit(limit)
    ).all()
    if not rows:
        return {"messages": [], "summary": "No recent mail.", "counts": {}, "usage": run.usage_dict()}
    answer = _json_object(run.run([
        run.system_prompt(
            "You triage the user's mail. Label every message needs-reply, fyi or low-priority, with a "
            "one-line reason. Answer with JSON only: {\"messages\": [{\"id\": ..., \"label\": ..., "
            "\"reason\": ...}], \"summary\": \"two or three sentences\"}."
        ),
        {"role": "user", "content": json.dumps({"messages": [mail_brief(m) for m in rows]})},
    ]))
    labelled = _labelled(answer, {str(m.id): m for m in rows})
    counts = {label: sum(1 for m in labelled if m["label"] == label) for label in TRIAGE_LABELS}
    return {"messages": labelled, "summary": str(answer.get("summary", ""))[:2000], "counts": counts,
            "usage": run.usage_dict()}


@job_task("mail.triage")
def triage_task(ctx: JobContext) -> dict:
    """Label recent messages needs-reply / fyi / low-priority, with a reason each, and summarize."""
    return triage(run=AgentRun(ctx), limit=ctx.params.get("limit", 20))


# -- mail.draft_reply ------------------------------------------------------------------


def _draft_params(message: MailMessage, body: str) -> dict:
    """The draft's fields: recipient and thread from the message itself, never from the model."""
    address = parseaddr(message.sender)[1] or message.sender
    subject = message.subject if message.subject.lower().startswith("re:") else f"Re: {message.subject}"
    params = {"to": [address], "subject": subject[:2048], "body": body,
              "thread_id": message.thread_id, "in_reply_to": message.external_id}
    return {key: value for key, value in params.items() if value}


def draft_reply(*, run: AgentRun, message_id: uuid.UUID, instructions: str = "") -> dict:
    """Draft a reply to one of the user's messages and propose saving it as a Gmail draft."""
    message = run.session.scalar(
        select(MailMessage).where(MailMessage.id == message_id, MailMessage.user_id == run.user.id)
    )
    if message is None:
        raise JobFailed("message_not_found", "No such mail message.")
    run.progress(5, "drafting reply")
    body = run.run([
        run.system_prompt(
            "You draft a reply to the user's mail message, in the user's voice. Answer with the body "
            "of the reply only: no subject line, no commentary."
        ),
        {"role": "user", "content": json.dumps({
            "message": {**mail_brief(message), "to": list(message.recipients or [])},
            "instructions": instructions,
        })},
    ], stream_text=True).strip()
    if not body:
        raise JobFailed("ai_bad_output", "The model drafted an empty reply.")
    params = _draft_params(message, body)
    run.progress(90, "drafting reply")
    propose(run.tc, "mail.create_draft", params, f"Reply to {params['to'][0]}: {params['subject']}"[:500])
    run.finish()
    return {"message_id": str(message.id), "draft": params, **run.actions(), "usage": run.usage_dict()}


@job_task("mail.draft_reply")
def draft_reply_task(ctx: JobContext) -> dict:
    """Draft a reply to one message and propose saving it as a Gmail draft."""
    return draft_reply(run=AgentRun(ctx), message_id=uuid.UUID(ctx.params["message_id"]),
                       instructions=ctx.params.get("instructions", ""))
