"""Results typed per job type: each JobType's result_schema, /openapi.json's discriminated Job,
and every type's real result held to its schema.

tests.support.wait_for_job checks every succeeded job it returns against its type's schema, so
each test that waits for a job is a check too; this file runs the types a test can run on the
suite's worker (and an agent against the fake OpenAI server), and names, for the rest, the test
whose real result is checked that way.
"""
from __future__ import annotations

import ast
from pathlib import Path

import jsonschema
import pytest

from shared.jobtypes import REGISTRY
from tests.factories import make_task
from tests.fakes.openai_server import FakeOpenAI
from tests.support import WorkerProcess, check_result, wait_for_job

TESTS = Path(__file__).resolve().parents[1]

# Types whose real result is checked by an existing test, through wait_for_job: (file, test).
CHECKED_ELSEWHERE = {
    "agent.plan_day": ("workers/test_agents.py", "test_plan_day_proposes_blocks_that_run_only_once_approved"),
    "mail.draft_reply": ("workers/test_agents.py",
                         "test_a_drafted_reply_goes_to_the_sender_and_a_rejected_one_never_runs"),
    "mail.triage": ("workers/test_agents.py", "test_triage_labels_mail_and_text_in_mail_cannot_widen_its_tools"),
    "calendar.sync": ("workers/test_google.py", None),
    "mail.sync": ("workers/test_google.py", None),
    "calendar.create_event": ("workers/test_google.py", None),
    "mail.create_draft": ("workers/test_google.py", None),
    "tasks.complete": ("workers/test_agents.py", "test_a_run_that_read_mail_only_proposes_and_approval_applies_once"),
    "memories.create": ("workers/test_agents.py", "test_a_run_that_read_mail_only_proposes_and_approval_applies_once"),
    "ops.backup": ("workers/test_backups.py", None),
    "ops.verify_backup": ("workers/test_backups.py", None),
    "ops.retention": ("workers/test_maintenance.py", None),
}
# Approved task changes return what tasks.complete does (one schema object: {"task": ...}).
SAME_AS_TASKS_COMPLETE = {"tasks.create", "tasks.update"}
# Types whose result no client reads: the job row is erased with the account, and a webhook
# delivery is the system account's own job.
NEVER_READ = {"account.delete", "webhooks.deliver"}
RUN_HERE = {"tasks.quick_add", "ops.ping", "report.daily_digest", "report.weekly_review", "account.export",
            "agent.assistant"}


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_type_declares_a_result_schema_that_refuses_an_empty_result(name):
    schema = REGISTRY[name].result_schema
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["type"] == "object" and schema["required"], f"{name} declares nothing its result must hold"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({}, schema, cls=jsonschema.Draft202012Validator)


@pytest.mark.fast
def test_every_type_is_run_here_or_checked_by_a_named_test():
    assert RUN_HERE | set(CHECKED_ELSEWHERE) | SAME_AS_TASKS_COMPLETE | NEVER_READ == set(REGISTRY)
    for name in SAME_AS_TASKS_COMPLETE:
        assert REGISTRY[name].result_schema is REGISTRY["tasks.complete"].result_schema
    for name, (path, test) in CHECKED_ELSEWHERE.items():
        source = (TESTS / path).read_text()
        assert "wait_for_job" in source and f'"{name}"' in source, (name, path)
        if test:
            assert test in {node.name for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef)}


@pytest.mark.fast
def test_the_document_describes_each_types_result_as_a_oneof_discriminated_by_type():
    from api import create_app

    document = create_app().test_client().get("/openapi.json").json
    schemas = document["components"]["schemas"]
    job = schemas["Job"]
    # The fields every job has are unchanged; the variants narrow `type` and `result`.
    assert {"id", "type", "status", "params", "result", "error", "attempts"} <= set(job["properties"])
    assert job["discriminator"]["propertyName"] == "type"
    mapping = job["discriminator"]["mapping"]
    assert set(mapping) == set(REGISTRY)
    assert [v["$ref"] for v in job["oneOf"]] == [mapping[name] for name in sorted(REGISTRY)]
    for name, ref in mapping.items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        assert variant["properties"]["type"]["const"] == name
        [typed, null] = variant["properties"]["result"]["oneOf"]
        assert null == {"type": "null"}
        assert schemas[typed["$ref"].rsplit("/", 1)[1]] == REGISTRY[name].result_schema


@pytest.mark.fast
def test_a_result_of_another_shape_is_refused():
    quick_add = {"type": "tasks.quick_add", "status": "succeeded", "result": {"task": {"title": "x"}}}
    with pytest.raises(jsonschema.ValidationError):
        check_result(quick_add)
    with pytest.raises(jsonschema.ValidationError):
        check_result({"type": "report.daily_digest", "status": "succeeded",
                      "result": {"task": {"id": "1", "title": "x", "due_at": None, "priority": "normal",
                                          "tags": [], "done": False}}})


# -- real results, from the suite's worker ------------------------------------------------


def run(client, headers, type_name, params=None, timeout=60.0) -> dict:
    response = client.post("/v1/jobs", headers=headers, json={"type": type_name, "params": params or {}})
    assert response.status_code == 202, response.json
    job = wait_for_job(client, response.json["id"], headers, timeout=timeout)  # checks the result
    assert job["status"] == "succeeded", job
    return job


@pytest.mark.worker
def test_the_real_results_of_reports_export_quick_add_and_ping_match_their_schemas(
        client, user, headers, admin_headers, worker):
    make_task(user, title="pay rent")
    added = run(client, headers, "tasks.quick_add", {"text": "call mom tomorrow 5pm #family !high"})
    assert added["result"]["task"]["title"] == "call mom"
    assert run(client, admin_headers, "ops.ping")["result"]["pong"] is True
    assert run(client, headers, "report.daily_digest")["result"]["ai_summary_status"] == "not_configured"
    assert len(run(client, headers, "report.weekly_review")["result"]["days"]) == 7
    assert "tasks" in run(client, headers, "account.export")["result"]["tables"]


@pytest.fixture(scope="module")
def fake_model():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.mark.worker
def test_an_assistant_result_matches_its_schema(settings, user, headers, fake_model, worker):
    from api import create_app

    client = create_app(settings.replace(openai_api_key="sk-test-not-secret", openai_base_url=fake_model.url)).test_client()
    fake_model.script(
        fake_model.tool_call("create_task", {"title": "Buy milk"}),
        fake_model.reply("Added 'Buy milk'."),
    )
    with worker.paused():  # the suite's worker has no OPENAI_API_KEY: this one takes the job
        ai_worker = WorkerProcess(env={"OPENAI_API_KEY": "sk-test-not-secret", "OPENAI_BASE_URL": fake_model.url,
                                       "OPENAI_MODEL": "fake-model"}, queues="interactive").start()
        try:
            result = run(client, headers, "agent.assistant", {"message": "remind me to buy milk"})["result"]
        finally:
            ai_worker.stop()
    assert result["reply"] == "Added 'Buy milk'." and result["applied_actions"]
    assert result["usage"]["calls"] == 2
