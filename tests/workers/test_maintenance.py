"""ops.retention: expired results and artifacts (files too), old mail, dead refresh tokens."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from scheduler.tick import submit_platform_job
from shared import artifacts, db
from shared.models import Artifact, Job, MailMessage, NotificationSend, RefreshToken, Webhook, WebhookDelivery, utcnow
from shared.storage import artifact_storage
from tests.factories import make_job
from tests.support import wait_for_job, wait_until
from workers.maintenance import purge_expired

DAY = timedelta(days=1)


def set_job(job, **values):
    with db.session_scope() as session:
        session.execute(update(Job).where(Job.id == job.id).values(**values))


def add_artifact(settings, job, name, expires_at=None):
    with db.session_scope() as session:
        row = artifacts.store(session=session, settings=settings, job=session.get(Job, job.id), name=name,
                              content_type="text/plain", data=b"x")
        if expires_at:
            row.expires_at = expires_at
        return artifact_storage(settings).local_path(row.path)


def add_token(user, **fields):
    with db.session_scope() as session:
        session.add(RefreshToken(user_id=user.id, family_id=uuid.uuid4(), token_hash=uuid.uuid4().hex,
                                 expires_at=fields.pop("expires_at", utcnow() + DAY), **fields))


def add_mail(user, date):
    with db.session_scope() as session:
        session.add(MailMessage(user_id=user.id, external_id=uuid.uuid4().hex, date=date))


def test_retention_purges_only_what_is_past_its_time(settings, user):
    now = utcnow()
    old_job, fresh_job, running = make_job(user), make_job(user), make_job(user, status="running")
    set_job(old_job, status="succeeded", expires_at=now - DAY)
    set_job(fresh_job, status="succeeded", expires_at=now + DAY)
    set_job(running, expires_at=now - DAY)  # never purged while it runs
    old_file = add_artifact(settings, old_job, "a.html")
    stale_file = add_artifact(settings, fresh_job, "stale.html", expires_at=now - DAY)
    kept_file = add_artifact(settings, fresh_job, "kept.html")
    add_mail(user, now - timedelta(days=settings.mail_retention_days + 1))
    add_mail(user, now - timedelta(days=settings.mail_retention_days - 1))
    add_token(user, expires_at=now - DAY)
    add_token(user, revoked_at=now - DAY)
    add_token(user, revoked_at=now - timedelta(minutes=1))  # its login's access tokens may still be out there
    month = timedelta(days=31)
    with db.session_scope() as session:
        hook = Webhook(user_id=user.id, url="https://hooks.example/h", events=["job.failed"], secret_encrypted="x")
        session.add(hook)
        session.flush()
        for status, age in (("sent", month), ("pending", month), ("sent", DAY)):
            session.add(NotificationSend(user_id=user.id, channel="fcm", event_key=uuid.uuid4().hex, title="t",
                                         status=status, created_at=now - age))
        for status, age in (("succeeded", month), ("pending", month), ("failed", DAY)):
            session.add(WebhookDelivery(webhook_id=hook.id, user_id=user.id, event="job.failed",
                                        event_key=uuid.uuid4().hex, status=status, created_at=now - age))
    add_token(user)

    with db.session_scope() as session:
        report = purge_expired(session=session, settings=settings, now=now)

    assert report == {"artifacts": 2, "artifact_files": 2, "jobs": 1, "mail_messages": 1, "refresh_tokens": 2,
                      "notification_sends": 1, "webhook_deliveries": 1, "audit_records": 0, "total_rows": 8}
    assert not old_file.exists() and not stale_file.exists() and kept_file.exists()
    with db.session_scope() as session:
        assert {j.id for j in session.scalars(select(Job))} == {fresh_job.id, running.id}
        assert [a.name for a in session.scalars(select(Artifact))] == ["kept.html"]
        assert session.query(MailMessage).count() == 1 and session.query(RefreshToken).count() == 2


@pytest.mark.worker
def test_retention_runs_as_a_job_and_beat_queues_it_once_a_day(client, settings, user, admin_headers, worker):
    old = make_job(user)
    set_job(old, status="failed", expires_at=utcnow() - DAY)

    with db.session_scope() as session:
        first = submit_platform_job(session=session, settings=settings, type_name="ops.retention", period_key="d1")
    with db.session_scope() as session:
        again = submit_platform_job(session=session, settings=settings, type_name="ops.retention", period_key="d1")
    assert first.id == again.id  # a second beat, or a retried beat task, queues nothing new

    wait_until(lambda: _status(first.id) == "succeeded", message="retention to run")
    with db.session_scope() as session:
        job = session.get(Job, first.id)
        assert job.result["jobs"] == 1 and session.get(Job, old.id) is None
    response = client.post("/v1/jobs", headers=admin_headers, json={"type": "ops.retention", "params": {}})
    assert wait_for_job(client, response.json["id"], admin_headers)["status"] == "succeeded"


def _status(job_id):
    with db.session_scope() as session:
        return session.get(Job, job_id).status
