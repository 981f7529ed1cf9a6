"""account.export holds every table that refers to a user; account.delete leaves none of their rows."""
from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from api.security import issue_refresh_token
from shared import artifacts, db, privacy
from shared.models import (
    AgentThread,
    AiUsage,
    AuditEvent,
    Base,
    CalendarEvent,
    Device,
    GoogleIntegration,
    GooglePendingLink,
    GoogleWrite,
    Job,
    MailMessage,
    Memory,
    NotificationSend,
    PasswordReset,
    ProposedAction,
    Schedule,
    TaskCompletion,
    ThreadMessage,
    User,
    Webhook,
    WebhookDelivery,
    utcnow,
)
from tests.factories import make_job, make_task
from tests.support import wait_for_job, wait_until

pytestmark = pytest.mark.worker


def fill(user, settings):
    """One or more rows of `user` in each table we know refers to users."""
    now = utcnow()
    task = make_task(user, title=f"task of {user.email}", due_at=now, repeat="FREQ=DAILY", repeat_start=now)
    job = make_job(user, status="succeeded")
    with db.session_scope() as session:
        session.add_all([
            CalendarEvent(user_id=user.id, external_id=f"e-{uuid.uuid4()}", summary="meeting", start_at=now,
                          end_at=now + timedelta(hours=1)),
            MailMessage(user_id=user.id, external_id=f"m-{uuid.uuid4()}", subject="hello", date=now,
                        body_encrypted="gAAAA-ciphertext"),
            Schedule(user_id=user.id, cron="0 8 * * *", timezone="UTC", job_type="tasks.quick_add",
                     params={"text": "x"}, next_run_at=now + timedelta(hours=1)),
            GoogleIntegration(user_id=user.id, refresh_token_encrypted="gAAAA-ciphertext"),
            GoogleWrite(user_id=user.id, kind="gmail_draft", key=str(uuid.uuid4()), external_id="d1"),
            GooglePendingLink(user_id=user.id, code_hash=uuid.uuid4().hex, refresh_token_encrypted="gAAAA-ciphertext",
                              scopes=[], expires_at=now + timedelta(minutes=10)),
            AiUsage(user_id=user.id, job_id=job.id, agent_type="agent.assistant", prompt_tokens=10,
                    completion_tokens=2),
            ProposedAction(user_id=user.id, job_id=job.id, kind="mail.create_draft", summary="reply",
                           params={"to": ["a@example.com"], "subject": "re", "body": "hi"}),
            # Memories: exported with everything else, erased with the account.
            Memory(user_id=user.id, text="my manager is Dana", source={"kind": "user"}),
            TaskCompletion(task_id=task.id, user_id=user.id, due_at=now, next_due_at=now + timedelta(days=1)),
            PasswordReset(user_id=user.id, token_hash=uuid.uuid4().hex, expires_at=now + timedelta(minutes=30)),
        ])
        thread = AgentThread(user_id=user.id, title="chat")
        session.add(thread)
        session.flush()
        session.add(ThreadMessage(thread_id=thread.id, user_id=user.id, role="user", content="hello"))
        device = Device(user_id=user.id, platform="fcm", token=f"fcm-token-{uuid.uuid4()}", token_hash=uuid.uuid4().hex)
        webhook = Webhook(user_id=user.id, url="https://hooks.example/h", events=["job.failed"],
                          secret_encrypted="gAAAA-ciphertext")
        session.add_all([device, webhook])
        session.flush()
        session.add_all([
            NotificationSend(user_id=user.id, device_id=device.id, channel="fcm", event_key=f"k-{uuid.uuid4()}",
                             title="reminder"),
            WebhookDelivery(webhook_id=webhook.id, user_id=user.id, event="job.failed", event_key=f"k-{uuid.uuid4()}"),
        ])
        issue_refresh_token(session, session.get(User, user.id), settings)
        artifacts.store(session=session, settings=settings, job=session.get(Job, job.id), name="old.html",
                        content_type="text/html", data=b"<p>old</p>")


def test_every_table_that_refers_to_users_is_known_to_the_export():
    # Built by introspection: a table another feature adds with a users foreign key is
    # covered with no change here. This pins that the introspection finds them all.
    referring = {t.name for t in Base.metadata.sorted_tables
                 if any(fk.column.table.name == "users" for c in t.columns for fk in c.foreign_keys)}
    assert {t.name for t, _ in privacy.user_tables()} == referring | {"users"}
    assert {"tasks", "jobs", "refresh_tokens", "calendar_events", "mail_messages", "schedules",
            "artifacts"} <= referring


def test_export_is_a_zip_of_every_user_table_without_secrets(client, settings, user, other_user, headers, worker):
    fill(user, settings)
    fill(other_user, settings)

    response = client.post("/v1/jobs", headers=headers, json={"type": "account.export", "params": {}})
    job = wait_for_job(client, response.json["id"], headers, timeout=60)

    assert job["status"] == "succeeded", job
    download = client.get(f"/v1/jobs/{job['id']}/artifact", headers=headers)
    assert download.status_code == 200 and download.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(download.data))
    manifest = json.loads(archive.read("manifest.json"))
    for table, _ in privacy.user_tables():
        rows = json.loads(archive.read(f"{table.name}.json"))
        assert manifest["tables"][table.name]["rows"] == len(rows)
        assert len(rows) >= 1, f"{table.name} exported nothing"
        for row in rows:
            assert other_user.email not in json.dumps(row)
            assert not set(row) & set(privacy.withheld_columns(table))
    [profile] = json.loads(archive.read("users.json"))
    assert profile["email"] == user.email and "password_hash" not in profile
    assert manifest["tables"]["users"]["withheld_columns"] == ["password_hash", "token_version"]
    assert "token_hash" in manifest["tables"]["refresh_tokens"]["withheld_columns"]
    assert "body_encrypted" in manifest["tables"]["mail_messages"]["withheld_columns"]
    assert {"token", "token_hash"} <= set(manifest["tables"]["devices"]["withheld_columns"])
    assert "secret_encrypted" in manifest["tables"]["webhooks"]["withheld_columns"]
    assert "token_hash" in manifest["tables"]["password_resets"]["withheld_columns"]
    assert client.get(f"/v1/jobs/{job['id']}/artifact", headers={"Authorization": "Bearer x"}).status_code == 401


def test_delete_erases_every_row_of_the_user_and_nothing_else(client, settings, user, other_user, headers, worker):
    fill(user, settings)
    fill(other_user, settings)
    with db.session_scope() as session:
        others_before = privacy.row_counts(session, other_user.id)
    user_dir = settings.artifacts_dir / str(user.id)
    assert user_dir.exists()

    response = client.post("/v1/jobs", headers=headers, json={"type": "account.delete", "params": {}})
    assert response.status_code == 202

    def gone():
        with db.session_scope() as session:
            return session.get(User, user.id) is None
    wait_until(gone, timeout=30, message="the account to be erased")
    with db.session_scope() as session:
        assert set(privacy.row_counts(session, user.id).values()) == {0}
        assert privacy.row_counts(session, other_user.id) == others_before
        [audit] = session.scalars(select(AuditEvent)).all()
    assert audit.event == "account.deleted"
    assert audit.subject_hash == privacy.subject_hash(settings.secret_key, user.id)
    assert user.email not in json.dumps(audit.details) and str(user.id) not in json.dumps(audit.details)
    assert audit.details["rows"]["tasks"] == 1
    # The deleted user's still-valid access token stops working at once, and Redis alone
    # can say so (shared.revocation: no user-row read needed).
    assert client.get("/v1/me", headers=headers).status_code == 401
    from shared import revocation
    from shared.redis_clients import cache_redis

    assert cache_redis().get(revocation.version_key(user.id)) == revocation.DELETED.encode()
    assert not user_dir.exists()
    assert (settings.artifacts_dir / str(other_user.id)).exists()
