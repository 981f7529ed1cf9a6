"""/v1/schedules: the user's automations, validated, owner-only, with next_run_at computed."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import update

from shared import db
from shared.models import Job, utcnow
from shared.schedules import next_run

PLAN = {"cron": "0 8 * * 1-5", "timezone": "Europe/Berlin", "job_type": "tasks.quick_add",
        "params": {"text": "stand-up notes"}}


def hold_running(job_id):
    """As if the job were still running (a new run_token: no worker of this suite can finish it)."""
    with db.session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(status="running", run_token="held-by-the-test"))


def create(client, headers, **overrides):
    return client.post("/v1/schedules", headers=headers, json={**PLAN, **overrides})


def test_create_returns_the_schedule_with_its_next_run(client, headers):
    response = create(client, headers)

    assert response.status_code == 201, response.json
    body = response.json
    assert {k: body[k] for k in ("cron", "timezone", "job_type", "params", "enabled", "overlap")} == {
        **{k: PLAN[k] for k in ("cron", "timezone", "job_type", "params")}, "enabled": True, "overlap": "skip"}
    assert body["last_run_at"] is None and body["last_job_id"] is None
    expected = next_run(PLAN["cron"], PLAN["timezone"], utcnow())
    assert datetime.fromisoformat(body["next_run_at"]) == expected


def test_a_daily_time_becomes_a_cron_in_the_users_timezone(client, headers):
    client.patch("/v1/me", headers=headers, json={"timezone": "Asia/Tokyo"})

    body = client.post("/v1/schedules", headers=headers,
                       json={"time": "18:45", "job_type": "tasks.quick_add", "params": {"text": "x"}}).json

    assert (body["cron"], body["timezone"]) == ("45 18 * * *", "Asia/Tokyo")


@pytest.mark.parametrize("overrides, field", [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "* * * *"}, "cron"),
    ({"cron": "0 0 31 2 *"}, "cron"),  # February 31st never comes
    ({"cron": None, "time": "25:00"}, "time"),
    ({"time": "08:00"}, "time"),  # both
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"overlap": "queue"}, "overlap"),
])
def test_bad_timing_is_a_422_naming_the_field(client, headers, overrides, field):
    body = {**PLAN, **overrides}
    body = {k: v for k, v in body.items() if v is not None}
    response = client.post("/v1/schedules", headers=headers, json=body)

    assert response.status_code == 422, response.json
    assert field in response.json["errors"]


def test_the_job_type_and_params_are_checked_like_a_submission(client, headers):
    unknown = create(client, headers, job_type="nope.nothing")
    bad_params = create(client, headers, params={"text": ""})
    admin_only = create(client, headers, job_type="ops.ping", params={})
    delete = create(client, headers, job_type="account.delete", params={})

    assert unknown.status_code == 422 and unknown.json["code"] == "unknown_job_type"
    assert bad_params.status_code == 422 and bad_params.json["code"] == "invalid_params"
    assert admin_only.status_code == 422 and admin_only.json["code"] == "unknown_job_type"
    assert delete.status_code == 422


def test_list_has_the_default_digest_and_paginates(client, headers):
    for _ in range(3):
        create(client, headers)

    first = client.get("/v1/schedules?limit=2", headers=headers).json
    second = client.get(f"/v1/schedules?limit=2&cursor={first['next_cursor']}", headers=headers).json

    items = first["items"] + second["items"]
    assert len(items) == 4 and second["next_cursor"] is None
    [digest] = [s for s in items if s["default"]]
    assert digest["job_type"] == "report.daily_digest" and digest["cron"] == "0 7 * * *"


def test_another_users_schedule_is_404(client, headers, other_headers):
    schedule_id = create(client, headers).json["id"]

    assert client.get(f"/v1/schedules/{schedule_id}", headers=other_headers).status_code == 404
    assert client.patch(f"/v1/schedules/{schedule_id}", headers=other_headers, json={"enabled": False}).status_code == 404
    assert client.delete(f"/v1/schedules/{schedule_id}", headers=other_headers).status_code == 404
    assert client.post(f"/v1/schedules/{schedule_id}/run", headers=other_headers).status_code == 404
    assert all(not s["id"] == schedule_id for s in client.get("/v1/schedules", headers=other_headers).json["items"])


def test_patch_moves_next_run_and_disabling_clears_it(client, headers):
    schedule_id = create(client, headers).json["id"]

    moved = client.patch(f"/v1/schedules/{schedule_id}", headers=headers, json={"cron": "30 6 * * *", "timezone": "UTC"})
    disabled = client.patch(f"/v1/schedules/{schedule_id}", headers=headers, json={"enabled": False})

    assert datetime.fromisoformat(moved.json["next_run_at"]) == next_run("30 6 * * *", "UTC", utcnow())
    assert disabled.json["enabled"] is False and disabled.json["next_run_at"] is None
    bad = client.patch(f"/v1/schedules/{schedule_id}", headers=headers, json={"params": {"nope": 1}})
    assert bad.status_code == 422


def test_delete_removes_it(client, headers):
    schedule_id = create(client, headers).json["id"]

    assert client.delete(f"/v1/schedules/{schedule_id}", headers=headers).status_code == 204
    assert client.get(f"/v1/schedules/{schedule_id}", headers=headers).status_code == 404


def test_the_default_digest_is_disabled_not_deleted_or_retimed(client, headers):
    digest = client.get("/v1/schedules", headers=headers).json["items"][0]

    assert client.delete(f"/v1/schedules/{digest['id']}", headers=headers).status_code == 409
    retime = client.patch(f"/v1/schedules/{digest['id']}", headers=headers, json={"cron": "0 9 * * *"})
    assert retime.status_code == 422 and retime.json["code"] == "default_schedule"
    assert client.patch(f"/v1/schedules/{digest['id']}", headers=headers, json={"enabled": False}).json["enabled"] is False

    client.patch("/v1/me", headers=headers, json={"digest_time": "09:15"})
    again = client.get("/v1/schedules", headers=headers).json["items"][0]
    assert again["cron"] == "15 9 * * *"


def test_run_now_queues_its_job_and_overlap_skip_refuses_a_second(client, headers):
    schedule_id = create(client, headers).json["id"]

    response = client.post(f"/v1/schedules/{schedule_id}/run", headers=headers)

    assert response.status_code == 202
    job = response.json
    assert job["type"] == "tasks.quick_add" and job["params"] == PLAN["params"]
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert client.get(f"/v1/schedules/{schedule_id}", headers=headers).json["last_job_id"] == job["id"]
    hold_running(job["id"])  # however fast a worker of this suite would have run it
    second = client.post(f"/v1/schedules/{schedule_id}/run", headers=headers)
    assert second.status_code == 409 and second.json["code"] == "schedule_running"


def test_a_user_has_a_bounded_number_of_schedules(client, headers, other_headers):
    from api.resources.schedules import MAX_SCHEDULES_PER_USER

    assert {create(client, headers).status_code for _ in range(MAX_SCHEDULES_PER_USER)} == {201}

    response = create(client, headers)

    assert response.status_code == 409 and response.json["code"] == "too_many_schedules"
    assert create(client, other_headers).status_code == 201  # per user


# -- unattended spending -----------------------------------------------------------------


@pytest.fixture
def ai_client(settings):
    from api import create_app

    return create_app(settings.replace(openai_api_key="sk-test-not-secret")).test_client()


@pytest.mark.parametrize("cron", [
    "*/5 * * * *",
    "* 8 * * *",
    "0,14 9 * * 1-5",
    "0,59 0,23 1,31 * *",  # one minute apart where the 31st meets the 1st
    "0,55 0,23 * * *",  # 23:55, then 00:00 the next day
])
def test_an_agent_cannot_be_scheduled_more_often_than_every_15_minutes(ai_client, headers, cron):
    response = create(ai_client, headers, cron=cron, job_type="agent.plan_day", params={})

    assert response.status_code == 422, response.json
    assert response.json["code"] == "schedule_too_frequent" and "cron" in response.json["errors"]


def test_every_15_minutes_is_allowed_and_other_types_are_not_limited(ai_client, headers):
    assert create(ai_client, headers, cron="*/15 * * * *", job_type="agent.assistant",
                  params={"message": "anything new?"}).status_code == 201
    # 00:59 and 23:59: an hour apart across midnight, and 23 hours within the day.
    assert create(ai_client, headers, cron="59 23,0 * * *", job_type="agent.plan_day", params={}).status_code == 201
    assert create(ai_client, headers, cron="* * * * *").status_code == 201  # tasks.quick_add


def test_an_edit_cannot_make_an_agent_schedule_too_frequent(ai_client, headers):
    agent = create(ai_client, headers, cron="0 8 * * *", job_type="agent.plan_day", params={}).json
    quick = create(ai_client, headers, cron="*/5 * * * *").json

    faster = ai_client.patch(f"/v1/schedules/{agent['id']}", json={"cron": "*/10 * * * *"}, headers=headers)
    retyped = ai_client.patch(f"/v1/schedules/{quick['id']}", json={"job_type": "agent.plan_day", "params": {}},
                              headers=headers)

    for response in (faster, retyped):
        assert response.status_code == 422 and response.json["code"] == "schedule_too_frequent"
    assert ai_client.get(f"/v1/schedules/{agent['id']}", headers=headers).json["cron"] == "0 8 * * *"
