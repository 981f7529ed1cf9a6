"""The job registry is the one declaration of a job type: every piece of a type is held to it.

A type without a task would be accepted by the api and never run; a task without a type
would never be sent; a toolset naming a tool that does not exist would fail the agent.
None of this needs PostgreSQL, Redis or a worker: it reads what the modules declare.
"""
from __future__ import annotations

import pytest

import scheduler  # noqa: F401  (its periodic tasks, registered on the same app)
import workers  # noqa: F401  (importing the package registers every task)
from shared.celery_app import app
from shared.jobtypes import REGISTRY, JobType
from workers.ai.tools import TOOLS
from workers.job_runner import BODIES, job_task

pytestmark = pytest.mark.fast


def test_every_registered_type_has_exactly_one_task():
    missing = sorted(name for name, jt in REGISTRY.items() if jt.task_name not in app.tasks)
    assert missing == [], f"registered job types without a @job_task: {missing}"
    assert sorted(BODIES) == sorted(REGISTRY)
    for name, job_type in REGISTRY.items():
        task = app.tasks[job_type.task_name]
        assert task.body is BODIES[name]
        assert (task.soft_time_limit, task.time_limit) == (job_type.soft_time_limit, job_type.time_limit)


def test_every_jobs_task_has_a_registered_type():
    job_tasks = sorted(name for name in app.tasks if name.startswith("jobs."))
    orphans = [name for name in job_tasks if name.removeprefix("jobs.") not in REGISTRY]
    assert orphans == [], f"jobs.* tasks without a registered type: {orphans}"
    assert len(job_tasks) == len(REGISTRY)


def test_a_second_task_for_a_type_is_refused():
    with pytest.raises(LookupError, match="already has a task"):
        @job_task("tasks.quick_add")
        def another_quick_add(ctx):  # pragma: no cover - never registered
            return {}


def test_a_task_for_an_unregistered_type_is_refused():
    with pytest.raises(LookupError, match="not in shared.jobtypes.REGISTRY"):
        job_task("tasks.no_such_type")


def test_every_agent_names_only_tools_that_exist():
    agents = {name: jt.toolset for name, jt in REGISTRY.items() if jt.toolset}
    assert set(agents) == {"agent.assistant", "agent.plan_day", "mail.triage", "mail.draft_reply"}
    for name, toolset in agents.items():
        unknown = sorted(set(toolset) - set(TOOLS))
        assert unknown == [], f"{name} names tools that do not exist: {unknown}"
        assert len(set(toolset)) == len(toolset), f"{name} names a tool twice"
    # The assistant may do everything but read_thread (draft_reply's view of one thread); the
    # others only what their purpose needs.
    assert set(agents["agent.assistant"]) == set(TOOLS) - {"read_thread"}
    assert not {"create_task", "update_task", "complete_task"} & set(agents["mail.triage"])
    # The one table of why each agent has each tool says the same (workers.ai.tools.AGENTS).
    from workers.ai.tools import AGENTS

    assert {name: set(a.why) for name, a in AGENTS.items()} == {name: set(t) for name, t in agents.items()}
    # Every tool that writes our database turns into a registered proposal kind in a tainted run.
    assert {t.name: t.proposes for t in TOOLS.values() if t.proposes} == {
        "create_task": "tasks.create", "update_task": "tasks.update", "complete_task": "tasks.complete"}
    assert all(not REGISTRY[t.proposes].submittable for t in TOOLS.values() if t.proposes)
    # Tools that bring other people's text taint the run.
    assert {t.name for t in TOOLS.values() if t.returns_untrusted} == {
        "list_events", "search_mail", "read_mail", "read_thread"}


def test_agents_check_the_budget_on_submit():
    from shared.ai import check_budget

    for name, job_type in REGISTRY.items():
        assert (check_budget in job_type.admission) == bool(job_type.toolset), name


def test_schedulability_is_declared_by_the_registry():
    refused = sorted(name for name, jt in REGISTRY.items() if not jt.schedulable)
    assert "account.delete" in refused
    # A type nobody may submit is not offered to a clock either.
    assert all(not jt.schedulable for jt in REGISTRY.values() if not jt.submittable)
    with pytest.raises(AssertionError, match="only a submittable type can be scheduled"):
        JobType(name="x.y", queue="sync", summary="", params_schema={}, submittable=False)


def test_every_periodic_entry_of_beat_names_a_task_and_a_registered_type():
    from scheduler.schedule import beat_schedule

    for name, entry in beat_schedule().items():
        assert entry["task"] in app.tasks, f"beat entry {name} sends {entry['task']}, which no module defines"
        if entry["task"] == "scheduler.platform_job":
            job_type = REGISTRY.get(entry["args"][0])
            assert job_type is not None, f"beat entry {name} queues an unregistered type {entry['args'][0]}"
            assert job_type.admin_only, f"{job_type.name} runs as the system account: it must be admin-only"
