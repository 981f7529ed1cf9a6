"""Proposed actions through the api: previews, stale and expired proposals, reject reasons, approve all."""
from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from api import create_app
from shared import db, previews
from shared.models import AgentThread, Job, MailMessage, Memory, ProposedAction, ThreadMessage, User, utcnow
from tests.factories import make_job, make_task


def propose(user, job, kind: str, params: dict, *, created_at=None) -> ProposedAction:
    with db.session_scope() as session:
        owner = session.get(User, user.id)
        action = ProposedAction(id=uuid.uuid4(), user_id=user.id, job_id=job.id, kind=kind, params=params,
                                summary="the model's summary",
                                preview=previews.render(session=session, user=owner, kind=kind, params=params),
                                created_at=created_at or utcnow())
        session.add(action)
    return action


def url(action: ProposedAction, verb: str = "") -> str:
    return f"/v1/jobs/{action.job_id}/actions/{action.id}" + (f"/{verb}" if verb else "")


def jobs_of_type(type_name: str) -> int:
    with db.session_scope() as session:
        return session.scalar(select(func.count()).select_from(Job).where(Job.type == type_name))


def test_a_drafts_preview_shows_every_recipient_the_body_links_and_who_is_unknown(client, user, headers):
    with db.session_scope() as session:
        session.add(MailMessage(user_id=user.id, external_id="s1", subject="hi", sender=user.email, date=utcnow(),
                                recipients=["dana@corp.example"], labels=["SENT"]))
        # An attacker's mail to the user is synced too: it makes no address known.
        session.add(MailMessage(user_id=user.id, external_id="i1", subject="x", sender="eve@evil.example",
                                date=utcnow(), recipients=["eve@evil.example"], labels=["INBOX"]))
    job = make_job(user, type="agent.assistant", status="succeeded")
    to = [f"c{i}@corp.example" for i in range(12)] + ["Dana <dana@corp.example>", "eve@evil.example"]
    body = "Code 482913.\nSee https://docs.corp.example/a and https://evil.example/x"
    propose(user, job, "mail.create_draft", {"to": to, "subject": "Re: budget", "body": body})

    [action] = client.get(f"/v1/jobs/{job.id}/actions", headers=headers).json["items"]

    preview = action["preview"]
    assert len(preview["to"]) == 14 and preview["to"][-1] == "eve@evil.example"
    assert preview["body"] == body and preview["subject"] == "Re: budget"
    assert preview["links"] == [{"url": "https://docs.corp.example/a", "host": "docs.corp.example"},
                                {"url": "https://evil.example/x", "host": "evil.example"}]
    assert "eve@evil.example" in preview["unknown_recipients"]
    assert "dana@corp.example" not in preview["unknown_recipients"]
    assert action["status"] == "proposed" and action["expires_at"]


def test_approving_a_task_change_runs_it_once_and_a_changed_task_is_409(client, user, headers):
    task = make_task(user, title="Pay invoice", notes="from the vendor")
    job = make_job(user, type="agent.assistant", status="succeeded")
    complete = propose(user, job, "tasks.complete", {"task_id": str(task.id)})
    update = propose(user, job, "tasks.update", {"task_id": str(task.id), "notes": "pay elsewhere"})

    listed = {a["type"]: a for a in client.get(f"/v1/jobs/{job.id}/actions", headers=headers).json["items"]}
    assert listed["tasks.update"]["preview"]["task"]["before"]["notes"] == "from the vendor"
    assert listed["tasks.update"]["preview"]["task"]["after"]["notes"] == "pay elsewhere"
    assert listed["tasks.complete"]["preview"]["task"]["after"]["done"] is True

    first = client.post(url(complete, "approve"), headers=headers)
    again = client.post(url(complete, "approve"), headers=headers)
    assert first.status_code == 202 and first.json["type"] == "tasks.complete"
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert jobs_of_type("tasks.complete") == 1

    client.patch(f"/v1/tasks/{task.id}", json={"notes": "changed by the user"}, headers=headers)
    stale = client.post(url(update, "approve"), headers=headers)
    assert stale.status_code == 409 and stale.json["code"] == "task_changed"
    assert jobs_of_type("tasks.update") == 0


def test_an_expired_proposal_cannot_be_approved_or_rejected(client, user, headers):
    job = make_job(user, type="agent.plan_day", status="succeeded")
    old = propose(user, job, "calendar.create_event",
                  {"summary": "Focus", "start": "2026-12-01T10:00:00+00:00", "end": "2026-12-01T11:00:00+00:00"},
                  created_at=utcnow() - timedelta(days=8))

    [action] = client.get(f"/v1/jobs/{job.id}/actions", headers=headers).json["items"]
    assert action["status"] == "expired"
    for verb in ("approve", "reject"):
        response = client.post(url(old, verb), headers=headers)
        assert response.status_code == 409 and response.json["code"] == "action_expired"
    assert jobs_of_type("calendar.create_event") == 0


def test_reject_takes_an_optional_reason_that_goes_back_to_the_thread(client, user, headers):
    with db.session_scope() as session:
        thread = AgentThread(user_id=user.id, title="chat")
        session.add(thread)
    job = make_job(user, type="agent.assistant", status="succeeded")
    with db.session_scope() as session:
        session.get(Job, job.id).result = {"thread_id": str(thread.id)}
    plain = propose(user, job, "tasks.create", {"title": "a"})
    empty = propose(user, job, "tasks.create", {"title": "b"})
    reasoned = propose(user, job, "mail.create_draft", {"to": ["x@corp.example"], "subject": "s", "body": "b"})

    assert client.post(url(plain, "reject"), headers=headers).status_code == 200
    assert client.post(url(empty, "reject"), json={}, headers=headers).status_code == 200
    response = client.post(url(reasoned, "reject"), json={"reason": "wrong person"}, headers=headers)
    assert response.status_code == 200 and response.json["reason"] == "wrong person"
    bad = client.post(url(reasoned, "reject"), json={"reason": 5}, headers=headers)
    assert bad.status_code == 422 and "reason" in bad.json["errors"]

    with db.session_scope() as session:
        said = [m.content for m in session.scalars(select(ThreadMessage).filter_by(thread_id=thread.id))]
    assert len(said) == 3 and any("Reason: wrong person" in text for text in said)


def test_approve_all_covers_only_task_proposals(client, user, headers):
    task = make_task(user, title="Renew passport")
    job = make_job(user, type="agent.assistant", status="succeeded")
    tasks = [propose(user, job, "tasks.create", {"title": "Buy milk"}),
             propose(user, job, "tasks.complete", {"task_id": str(task.id)})]
    others = [propose(user, job, "mail.create_draft", {"to": ["x@corp.example"], "subject": "s", "body": "b"}),
              propose(user, job, "calendar.create_event", {"summary": "s", "start": "2026-12-01T10:00:00+00:00",
                                                           "end": "2026-12-01T11:00:00+00:00"}),
              propose(user, job, "memories.create", {"text": "likes tea"})]

    response = client.post(f"/v1/jobs/{job.id}/actions/approve-all", headers=headers)

    assert response.status_code == 200
    assert sorted(j["type"] for j in response.json["items"]) == ["tasks.complete", "tasks.create"]
    statuses = {a["id"]: a["status"] for a in client.get(f"/v1/jobs/{job.id}/actions", headers=headers).json["items"]}
    assert {statuses[str(a.id)] for a in tasks} == {"approved"}
    assert {statuses[str(a.id)] for a in others} == {"proposed"}


def test_a_memory_proposal_at_the_limit_is_409(settings, user, headers):
    client = create_app(settings.replace(max_memories_per_user=1)).test_client()
    with db.session_scope() as session:
        session.add(Memory(user_id=user.id, text="one", source={"kind": "user"}))
    job = make_job(user, type="agent.assistant", status="succeeded")
    action = propose(user, job, "memories.create", {"text": "two"})

    refused = client.post(url(action, "approve"), headers=headers)

    assert refused.status_code == 409 and refused.json["code"] == "memory_limit_reached"
    assert jobs_of_type("memories.create") == 0
