"""The catalogue of job types: every type's name, params schema, queue, role and limits
(the machinery, JobType and the registry it fills, is shared.jobs.registry).

The one declaration of a job type: the api validates, admits and routes with it, the
schedules API asks it what may run on a clock, and workers build their Celery tasks
(and an agent its tools) from it; neither imports the other. A type is registered here
when its worker side exists, so `/v1/job-types` never offers a job that nothing would
run; tests/shared/test_registry.py holds every type to exactly one task.
"""
from __future__ import annotations

from shared.ai import check_budget
from shared.google_oauth import CALENDAR_EVENTS, GMAIL_COMPOSE, GMAIL_READONLY
from shared.jobs.registry import (  # noqa: F401  (the machinery's names, as callers import them from here)
    QUEUES,
    REGISTRY,
    AdmissionCheck,
    JobType,
    get_job_type,
    longest_time_limit,
    register,
)
from shared.settings import Settings


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


# Dates the workers can step a week or a day past and still be in range, and a person
# means: 9999-12-31 is a 422 when submitted, not an internal_error in the worker.
_YEARS = "^(20[0-9]{2}|2100)-"
_DATE = {"type": "string", "format": "date", "pattern": _YEARS,
         "errorMessage": "Use a date between 2000-01-01 and 2100-12-31 (YYYY-MM-DD)."}
_DATE_TIME = {"type": "string", "format": "date-time", "pattern": _YEARS,
              "errorMessage": "Use an ISO 8601 date-time in the years 2000 to 2100."}


# -- what each type's result holds once it succeeded (JobType.result_schema) -----------------
# Open objects (more keys may come): apps rely on the required ones. Each schema is the shape
# its worker returns (workers/*.py); tests/shared/test_job_results.py validates real results.

def _result(properties: dict, required: tuple[str, ...] | None = None) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties if required is None else required)}


_STR = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}
_BOOL = {"type": "boolean"}
_NULLABLE_STR = {"type": ["string", "null"]}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_TASK = _result({
    "id": _STR, "title": _STR, "notes": _STR, "due_at": _NULLABLE_STR, "remind_at": _NULLABLE_STR,
    "all_day": _BOOL, "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
    "tags": {"type": "array", "items": _STR}, "repeat": _NULLABLE_STR, "repeat_start": _NULLABLE_STR,
    "done": _BOOL, "completed_at": _NULLABLE_STR, "created_at": _STR, "updated_at": _STR,
}, required=("id", "title", "due_at", "priority", "tags", "done"))
_TASK_RESULT = _result({"task": _TASK})
_ARTIFACT = _result({"name": _STR, "content_type": _STR, "size": _INT, "sha256": _STR, "url": _STR,
                     "artifact_url": _STR, "artifact_url_expires_at": _STR})
_ARTIFACTS = {"artifact_url": _STR, "artifacts": {"type": "array", "items": _ARTIFACT}}
_BACKUP = _result({"id": _STR, "filename": _STR, "size": _INT, "sha256": _STR, "tables": _INT, "rows": _INT},
                  required=("id", "filename", "sha256"))
_USAGE = _result({"model": _STR, "calls": _INT, "prompt_tokens": _INT, "completion_tokens": _INT,
                  "total_tokens": _INT, "estimated": _BOOL, "estimated_cost_usd": {"type": ["number", "null"]}},
                 required=("model", "calls", "prompt_tokens", "completion_tokens", "total_tokens"))
_AGENT_RUN = {
    "applied_actions": {"type": "array", "items": {"type": "object"}},
    "proposed_actions": {"type": "array", "items": {"type": "object"}},
    "tainted": _BOOL,
    "invisible_removed": _INT,
    "references": {"type": "array", "items": _result({"type": _STR, "id": _STR})},
    "usage": _USAGE,
}
_DIGEST_TASK = _result({"id": _STR, "title": _STR, "due_at": _NULLABLE_STR, "priority": _STR,
                        "tags": {"type": "array", "items": _STR}})
_SYNC = _result({"mode": {"type": "string", "enum": ["incremental", "full"]}, "pages": _INT,
                 "resync_reason": _STR}, required=("mode", "pages"))


register(
    JobType(
        name="tasks.quick_add",
        queue="interactive",
        summary='Natural-language quick add: "call mom tomorrow 5pm #family !high" becomes a task.',
        params_schema=_object(
            {"text": {"type": "string", "minLength": 1, "maxLength": 1000}}, required=("text",)
        ),
        result_schema=_TASK_RESULT,
        soft_time_limit=20,
        time_limit=30,
    )
)

register(
    JobType(
        name="ops.ping",
        queue="maintenance",
        summary="Canary job: sleeps, then succeeds (or fails on request); proves the pipeline end to end.",
        params_schema=_object(
            {
                "sleep_seconds": {"type": "number", "minimum": 0, "maximum": 60, "default": 0},
                "fail": {
                    "type": "string",
                    "enum": ["never", "always", "first_attempt"],
                    "default": "never",
                },
            }
        ),
        result_schema=_result({"pong": {"const": True}, "attempt": {"type": "integer", "minimum": 1},
                               "slept_seconds": {"type": "number", "minimum": 0}}),
        admin_only=True,
        soft_time_limit=90,
        time_limit=120,
    )
)

# -- writes to Google, made only by approving an agent's proposed action ---------------------

register(
    JobType(
        name="calendar.create_event",
        queue="sync",
        summary="Create an event in the user's Google Calendar (an approved agent action).",
        params_schema=_object(
            {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "start": _DATE_TIME,
                "end": _DATE_TIME,
                "description": {"type": "string", "maxLength": 8192},
                "location": {"type": "string", "maxLength": 1024},
                "attendees": {"type": "array", "items": {"type": "string", "format": "email"}, "maxItems": 100},
                "timezone": {"type": "string", "maxLength": 64},
                "action_id": {"type": "string", "format": "uuid"},
            },
            required=("summary", "start", "end"),
        ),
        result_schema=_result({
            "event": _result({"id": _STR, "summary": _NULLABLE_STR, "start": _NULLABLE_STR, "end": _NULLABLE_STR,
                              "all_day": _BOOL, "html_link": _NULLABLE_STR}, required=("id", "start", "end")),
            "external_id": _STR,
        }),
        submittable=False,
        schedulable=False,
        soft_time_limit=60,
        time_limit=90,
        max_attempts=5,
        google_scopes=(CALENDAR_EVENTS,),
    )
)

register(
    JobType(
        name="mail.create_draft",
        queue="sync",
        summary="Save a draft in the user's Gmail (an approved agent action).",
        params_schema=_object(
            {
                "to": {"type": "array", "items": {"type": "string", "minLength": 3, "maxLength": 320},
                       "minItems": 1, "maxItems": 100},
                "subject": {"type": "string", "maxLength": 2048},
                "body": {"type": "string", "maxLength": 100000},
                "thread_id": {"type": "string", "maxLength": 255},
                "in_reply_to": {"type": "string", "maxLength": 255},
                "action_id": {"type": "string", "format": "uuid"},
            },
            required=("to", "subject", "body"),
        ),
        result_schema=_result({"draft_id": _STR}),
        submittable=False,
        schedulable=False,
        soft_time_limit=60,
        time_limit=90,
        max_attempts=5,
        google_scopes=(GMAIL_COMPOSE,),
    )
)

# -- changes in our own database that an agent proposed from a tainted run ------------------
# (workers.ai.tools: a run that read third-party text only proposes its writes; approving
# one submits it as one of these, so it runs once, as its own job, like a draft or an event.)

_TASK_FIELDS = {
    "title": {"type": "string", "minLength": 1, "maxLength": 500},
    "notes": {"type": "string", "maxLength": 5000},
    "due_at": {"type": ["string", "null"], "format": "date-time"},
    "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 50}, "maxItems": 20},
}
_ACTION_ID = {"action_id": {"type": "string", "format": "uuid"}}
_TASK_ID = {"task_id": {"type": "string", "format": "uuid"}}

_MEMORY_RESULT = _result({"memory": _result({"id": _STR, "text": _STR, "source": {"type": "object"},
                                              "created_at": _STR, "updated_at": _STR})})
for _name, _summary, _properties, _required, _result_schema in (
    ("tasks.create", "Create a task (an approved agent action).", {**_TASK_FIELDS, **_ACTION_ID}, ("title",),
     _TASK_RESULT),
    # No `repeat` here: an agent may not change how a task repeats (not even with approval).
    ("tasks.update", "Change a task (an approved agent action).", {**_TASK_ID, **_TASK_FIELDS, **_ACTION_ID},
     ("task_id",), _TASK_RESULT),
    ("tasks.complete", "Complete a task (an approved agent action).", {**_TASK_ID, **_ACTION_ID}, ("task_id",),
     _TASK_RESULT),
    ("memories.create", "Keep a memory the assistant proposed (an approved agent action).",
     {"text": {"type": "string", "minLength": 1, "maxLength": 500},
      "source": {"type": "object"}, **_ACTION_ID}, ("text",), _MEMORY_RESULT),
):
    register(
        JobType(
            name=_name,
            queue="interactive",
            summary=_summary,
            params_schema=_object(_properties, required=_required),
            result_schema=_result_schema,
            submittable=False,
            schedulable=False,
            soft_time_limit=20,
            time_limit=30,
        )
    )

# -- reports, account and backups (schedules, reports, backups and privacy) ----------------

register(
    JobType(
        name="report.daily_digest",
        queue="reports",
        summary="Today's agenda, tasks due today and overdue, mail needing a reply; JSON plus an HTML artifact.",
        params_schema=_object({"date": _DATE}),
        result_schema=_result({
            "date": _STR, "timezone": _STR,
            "agenda": {"type": "array", "items": _result({"id": _STR, "summary": _NULLABLE_STR,
                                                          "start": _NULLABLE_STR, "end": _NULLABLE_STR,
                                                          "all_day": _BOOL}, required=("id", "start"))},
            "tasks_due_today": {"type": "array", "items": _DIGEST_TASK},
            "tasks_overdue": {"type": "array", "items": _DIGEST_TASK},
            "mail_needing_reply": {"type": "array", "items": _result({"id": _STR, "subject": _NULLABLE_STR,
                                                                      "from": _NULLABLE_STR}, required=("id",))},
            "ai_summary": _NULLABLE_STR,
            "ai_summary_status": {"type": "string", "enum": ["ok", "not_configured", "unavailable"]},
            **_ARTIFACTS,
        }),
        soft_time_limit=120,
        time_limit=150,
        poll_after=2,
        notify=True,
    )
)

register(
    JobType(
        name="account.export",
        queue="reports",
        summary="Everything we hold about you, as a zip of JSON files (data portability).",
        params_schema=_object({}),
        result_schema=_result({
            "tables": {"type": "object", "additionalProperties": _result(
                {"rows": _INT, "withheld_columns": {"type": "array", "items": _STR}})},
            **_ARTIFACTS,
        }),
        soft_time_limit=600,
        time_limit=660,
        poll_after=2,
        notify=True,
    )
)

register(
    JobType(
        name="account.delete",
        queue="reports",
        summary="Erase your account and everything you own; revokes connected Google access.",
        params_schema=_object({}),
        result_schema=_result({"deleted": {"const": True}, "rows": _COUNTS}),
        schedulable=False,
        soft_time_limit=300,
        time_limit=360,
        poll_after=2,
    )
)

register(
    JobType(
        name="ops.backup",
        queue="maintenance",
        summary="Back up the database (pg_dump, or SQLite's backup API), record its checksums, apply retention.",
        params_schema=_object({}),
        result_schema=_result({"backup": _BACKUP, "pruned": {"type": "array"}}),
        admin_only=True,
        soft_time_limit=3300,
        time_limit=3600,
        max_attempts=2,
        poll_after=5,
    )
)

register(
    JobType(
        name="ops.verify_backup",
        queue="maintenance",
        summary="Restore the newest backup (or backup_id) into a scratch database and compare it table by table.",
        params_schema=_object({"backup_id": {"type": "string", "format": "uuid"}}),
        result_schema=_result({"backup": _BACKUP, "tables": _INT, "rows": _INT}),
        admin_only=True,
        soft_time_limit=3300,
        time_limit=3600,
        max_attempts=2,
        poll_after=5,
    )
)

register(
    JobType(
        name="ops.retention",
        queue="maintenance",
        summary="Purge expired job results and artifacts, mail older than MAIL_RETENTION_DAYS, dead refresh tokens.",
        params_schema=_object({}),
        result_schema=_result({key: _INT for key in (
            "artifacts", "artifact_files", "jobs", "mail_messages", "refresh_tokens", "notification_sends",
            "webhook_deliveries", "audit_records", "total_rows")}),
        admin_only=True,
        soft_time_limit=600,
        time_limit=660,
        poll_after=2,
    )
)

register(
    JobType(
        name="report.weekly_review",
        queue="reports",
        summary="The week's numbers (tasks created and done, meeting hours, mail) with a PNG chart.",
        params_schema=_object({"week_start": _DATE}),
        result_schema=_result({
            "week_start": _STR, "timezone": _STR,
            "days": {"type": "array", "minItems": 7, "maxItems": 7, "items": _result(
                {"date": _STR, "tasks_created": _INT, "tasks_completed": _INT, "meeting_hours": {"type": "number"},
                 "mail_received": _INT})},
            "totals": _result({"tasks_created": _INT, "tasks_completed": _INT, "meeting_hours": {"type": "number"},
                               "mail_received": _INT}),
            **_ARTIFACTS,
        }),
        soft_time_limit=120,
        time_limit=150,
        poll_after=2,
        notify=True,
    )
)
# -- Google sync (workers/sync.py) ---------------------------------------------------------


def _google_configured(settings: Settings) -> bool:
    from shared.google_oauth import configured

    return configured(settings)


for _name, _summary, _scope in (
    ("calendar.sync", "Google Calendar sync: incremental with sync tokens; a 410 triggers a full resync.",
     CALENDAR_EVENTS),
    ("mail.sync", "Gmail sync: incremental from the history id; a 404 triggers a full resync.", GMAIL_READONLY),
):
    register(
        JobType(
            name=_name,
            queue="sync",
            summary=_summary,
            params_schema=_object({"full": {"type": "boolean", "default": False}}),
            result_schema=_SYNC,
            soft_time_limit=240,
            time_limit=300,
            max_attempts=4,
            poll_after=2,
            available=_google_configured,
            unavailable_code="google_not_configured",
            coalesce=True,
            google_scopes=(_scope,),
        )
    )


# -- AI agents (need OPENAI_API_KEY; any OpenAI-compatible server) ----------------------


def _ai_configured(settings: Settings) -> bool:
    return bool(settings.openai_api_key)


# Why each agent has each tool, and which tools taint a run: workers.ai.tools (AGENTS, TOOLS).


def _agent(name: str, summary: str, properties: dict, required: tuple[str, ...] = (), *,
           toolset: tuple[str, ...], result: dict) -> JobType:
    return register(
        JobType(
            name=name,
            queue="interactive",
            summary=summary,
            params_schema=_object(properties, required=required),
            # What a run reports (actions, safety, usage) beside its answer; an empty mail.triage only usage.
            result_schema=_result({**_AGENT_RUN, **result["properties"]},
                                  required=("usage", *result["required"])),
            # Room for a few model round trips, each with the SDK's retries.
            soft_time_limit=150,
            time_limit=180,
            max_attempts=3,
            poll_after=2,
            available=_ai_configured,
            unavailable_code="ai_not_configured",
            min_schedule_minutes=15,
            admission=(check_budget,),
            toolset=toolset,
            notify=True,
            live_output=True,
        )
    )


_agent(
    "agent.assistant",
    "AI assistant with tools over your tasks, calendar and mail; thread_id continues a conversation.",
    {
        "message": {"type": "string", "minLength": 1, "maxLength": 4000},
        "thread_id": {"type": "string", "format": "uuid"},
    },
    required=("message",),
    toolset=("list_tasks", "search_tasks", "create_task", "update_task", "complete_task", "list_events",
             "free_slots", "search_mail", "read_mail", "propose_event", "propose_draft", "propose_memory"),
    result=_result({"thread_id": _STR, "reply": _STR}),
)
_agent(
    "agent.plan_day",
    "AI: fits your open tasks into the free time of a day and proposes calendar blocks.",
    {"date": _DATE},
    toolset=("list_tasks", "list_events", "free_slots", "propose_event"),
    result=_result({"date": _STR, "timezone": _STR, "free_slots": {"type": "array"}, "summary": _STR}),
)
_agent(
    "mail.triage",
    "AI: labels recent mail needs-reply / FYI / low-priority, with a reason each and a summary.",
    {"limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}},
    toolset=("search_mail", "read_mail"),
    result=_result({
        "messages": {"type": "array", "items": _result({
            "id": _STR, "subject": _STR, "from": _STR,
            "label": {"type": "string", "enum": ["needs-reply", "fyi", "low-priority"]}, "reason": _STR})},
        "summary": _STR, "counts": _COUNTS,
    }),
)
_agent(
    "mail.draft_reply",
    "AI: drafts a reply to one message and proposes saving it as a Gmail draft.",
    {
        "message_id": {"type": "string", "format": "uuid"},
        "instructions": {"type": "string", "maxLength": 2000},
    },
    required=("message_id",),
    # Only what a reply needs: the message's own thread and the user's free time (workers.ai.tools.AGENTS).
    toolset=("read_thread", "free_slots"),
    result=_result({"message_id": _STR, "draft": _result(
        {"to": {"type": "array", "items": _STR}, "subject": _STR, "body": _STR}, required=("to", "body"))}),
)


# -- notifications (workers/webhooks.py) ---------------------------------------------------

register(
    JobType(
        name="webhooks.deliver",
        queue="sync",
        summary="One attempt to deliver a signed event to a webhook; the next is set on the delivery row.",
        # Run as the system account (users never see or cancel it); user_id names the delivery's user.
        params_schema=_object({"delivery_id": {"type": "string", "format": "uuid"},
                               "user_id": {"type": "string", "format": "uuid"}}, required=("delivery_id",)),
        submittable=False,
        schedulable=False,
        result_schema=_result({"delivery_id": _STR, "status": {
            "type": "string", "enum": ["succeeded", "failed", "pending", "not_pending"]}}),
        counts_toward_cap=False,
        # One HTTP call with PUSH_HTTP_TIMEOUT; the delivery row, not the job, carries the retries.
        soft_time_limit=30,
        time_limit=45,
        max_attempts=1,
    )
)
