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


register(
    JobType(
        name="tasks.quick_add",
        queue="interactive",
        summary='Natural-language quick add: "call mom tomorrow 5pm #family !high" becomes a task.',
        params_schema=_object(
            {"text": {"type": "string", "minLength": 1, "maxLength": 1000}}, required=("text",)
        ),
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

for _name, _summary, _properties, _required in (
    ("tasks.create", "Create a task (an approved agent action).", {**_TASK_FIELDS, **_ACTION_ID}, ("title",)),
    # No `repeat` here: an agent may not change how a task repeats (not even with approval).
    ("tasks.update", "Change a task (an approved agent action).", {**_TASK_ID, **_TASK_FIELDS, **_ACTION_ID},
     ("task_id",)),
    ("tasks.complete", "Complete a task (an approved agent action).", {**_TASK_ID, **_ACTION_ID}, ("task_id",)),
    ("memories.create", "Keep a memory the assistant proposed (an approved agent action).",
     {"text": {"type": "string", "minLength": 1, "maxLength": 500},
      "source": {"type": "object"}, **_ACTION_ID}, ("text",)),
):
    register(
        JobType(
            name=_name,
            queue="interactive",
            summary=_summary,
            params_schema=_object(_properties, required=_required),
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
           toolset: tuple[str, ...]) -> JobType:
    return register(
        JobType(
            name=name,
            queue="interactive",
            summary=summary,
            params_schema=_object(properties, required=required),
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
)
_agent(
    "agent.plan_day",
    "AI: fits your open tasks into the free time of a day and proposes calendar blocks.",
    {"date": _DATE},
    toolset=("list_tasks", "list_events", "free_slots", "propose_event"),
)
_agent(
    "mail.triage",
    "AI: labels recent mail needs-reply / FYI / low-priority, with a reason each and a summary.",
    {"limit": {"type": "integer", "minimum": 1, "maximum": 50, "default": 20}},
    toolset=("search_mail", "read_mail"),
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
        counts_toward_cap=False,
        # One HTTP call with PUSH_HTTP_TIMEOUT; the delivery row, not the job, carries the retries.
        soft_time_limit=30,
        time_limit=45,
        max_attempts=1,
    )
)
