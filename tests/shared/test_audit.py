"""The audit log: records of data access, a hash chain `assistant audit verify` checks, a
trigger that keeps rows from changing, and each person's access log."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from shared import audit, db
from shared.cli import main
from shared.migrate import alembic_config
from shared.models import AuditRecord, utcnow
from tests.factories import make_job


def records() -> list[AuditRecord]:
    with db.session_scope() as session:
        return list(session.scalars(select(AuditRecord).order_by(AuditRecord.seq)))


def test_an_admin_reading_someones_jobs_shows_in_their_access_log(client, user, other_user, admin, headers,
                                                                   admin_headers):
    make_job(user)
    make_job(user)
    make_job(other_user)

    listed = client.get("/v1/admin/jobs", headers=admin_headers)
    assert listed.status_code == 200 and len(listed.json["items"]) == 3

    # One record per distinct person shown, not per job.
    shown = [r for r in records() if r.action == "admin.jobs.list"]
    assert sorted(str(r.subject_id) for r in shown) == sorted([str(user.id), str(other_user.id)])
    assert {r.actor_kind for r in shown} == {"admin"} and {r.actor_id for r in shown} == {admin.id}

    log = client.get("/v1/me/access-log", headers=headers)
    assert log.status_code == 200
    [entry] = [e for e in log.json["items"] if e["action"] == "admin.jobs.list"]
    assert entry["actor"] == "an administrator" and entry["resource_type"] == "jobs"
    body = json.dumps(log.json)
    assert admin.email not in body and str(admin.id) not in body and "127.0.0.1" not in body


def test_the_chain_verifies_and_an_edit_by_sql_breaks_it(client, user, admin_headers):
    make_job(user)
    for _ in range(3):
        assert client.get("/v1/admin/jobs", headers=admin_headers).status_code == 200
    runner = CliRunner()
    ok = runner.invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 records" in ok.output, ok.output

    with db.get_engine().begin() as connection:
        # The trigger refuses it...
        with pytest.raises(DBAPIError, match="append-only"):
            with connection.begin_nested():
                connection.execute(text("UPDATE audit_log SET action = 'nothing' WHERE seq = 2"))
        # ...so a superuser switches it off first.
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text("UPDATE audit_log SET details = '{\"status\": \"x\"}' WHERE seq = 2"))

    broken = runner.invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1 and "AUDIT CHAIN BROKEN" in broken.output and "row 2" in broken.output


def test_a_deleted_row_is_refused_and_if_forced_breaks_the_chain(user, settings):
    with db.session_scope() as session:
        for _ in range(3):
            audit.record(session, actor=audit.OPERATOR, action="cli.jobs.show", resource="job", subjects=[user.id])
    with pytest.raises(DBAPIError, match="append-only"):
        with db.get_engine().begin() as connection:
            connection.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with pytest.raises(DBAPIError, match="TRUNCATE is refused"):
        with db.get_engine().begin() as connection:
            connection.execute(text("TRUNCATE audit_log"))
    with db.get_engine().begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with db.session_scope() as session:
        with pytest.raises(audit.ChainBroken, match="rows 2-2 are missing"):
            audit.verify(session, settings=settings)


def test_an_erasure_clears_the_clear_id_and_the_chain_still_holds(user, other_user, settings):
    with db.session_scope() as session:
        audit.record(session, actor=audit.OPERATOR, action="cli.jobs.list", resource="jobs",
                     subjects=[user.id, other_user.id, user.id])  # one record per distinct subject
        audit.record(session, actor=db_user(session, user.id), action="auth.sign_in", resource="session",
                     subjects=[user.id])
    with db.session_scope() as session:
        audit.forget(session, user.id)
    rows = records()
    assert len(rows) == 3
    assert [r.subject_id for r in rows] == [None, other_user.id, None] and rows[2].actor_id is None
    assert rows[0].subject_hash == audit._hash_of(settings, user.id)  # the journal's key: still matchable
    with db.session_scope() as session:
        assert audit.verify(session, settings=settings).rows == 3


def db_user(session, user_id):
    from shared.models import User

    return session.get(User, user_id)


def test_retention_trims_behind_a_checkpoint_and_the_rest_verifies(user, settings):
    old = utcnow() - timedelta(days=settings.audit_retention_days + 1)
    with db.session_scope() as session:
        for _ in range(3):
            audit.record(session, actor=audit.OPERATOR, action="cli.jobs.show", resource="job", subjects=[user.id])
    with db.get_engine().begin() as connection:  # two records written long ago
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text("UPDATE audit_log SET created_at = :old WHERE seq <= 2"), {"old": old})
    with db.session_scope() as session:  # re-chain what the backdating changed, as if written then
        previous = audit.GENESIS
        rows = session.execute(select(*audit._COLUMNS).order_by(AuditRecord.seq)).mappings().all()
        session.execute(text("SET LOCAL session_replication_role = replica"))
        for row in rows:
            previous = audit.chain_hash(settings.audit_chain_key, previous, dict(row))
            session.execute(text("UPDATE audit_log SET row_hash = :h WHERE seq = :s"), {"h": previous, "s": row["seq"]})

    with db.session_scope() as session:
        assert audit.trim(session, settings=settings) == 2
    remaining = records()
    assert [r.seq for r in remaining] == [3, 4] and remaining[-1].action == audit.CHECKPOINT
    assert remaining[-1].checkpoint_seq == 2
    with db.session_scope() as session:
        assert audit.verify(session, settings=settings).rows == 2


def test_a_failed_sign_in_is_recorded_for_the_account_it_named(client, user, headers):
    assert client.post("/v1/auth/login", json={"email": user.email, "password": "wrong"}).status_code == 401
    assert client.post("/v1/auth/login", json={"email": "nobody@example.com", "password": "x"}).status_code == 401
    failed = [r for r in records() if r.action == "auth.sign_in_failed"]
    assert [r.subject_id for r in failed] == [user.id, None]
    entries = client.get("/v1/me/access-log", headers=headers).json["items"]
    assert {"action": "auth.sign_in_failed", "actor": "someone"}.items() <= entries[0].items()


def test_admins_read_the_log_with_filters_and_the_reading_is_recorded(client, user, other_user, admin_headers,
                                                                      headers):
    make_job(user)
    make_job(other_user)
    client.get("/v1/admin/jobs", headers=admin_headers)
    client.get(f"/v1/admin/jobs?user={user.id}", headers=admin_headers)

    assert client.get("/v1/admin/audit", headers=headers).status_code == 403
    page = client.get(f"/v1/admin/audit?subject={user.id}&limit=1", headers=admin_headers)
    assert page.status_code == 200
    assert [i["subject_id"] for i in page.json["items"]] == [str(user.id)] and page.json["next_cursor"]
    rest = client.get(f"/v1/admin/audit?subject={user.id}&cursor={page.json['next_cursor']}", headers=admin_headers)
    assert len(rest.json["items"]) == 1 and rest.json["items"][0]["seq"] < page.json["items"][0]["seq"]
    assert [r for r in records() if r.action == "admin.audit.read"]
    assert client.get("/v1/admin/audit?cursor=bm9wZQ", headers=admin_headers).status_code == 422
    assert client.get("/v1/admin/audit?since=yesterday", headers=admin_headers).status_code == 422


@pytest.mark.fast
def test_the_embedded_sqlite_default_chains_and_guards_too(tmp_path, settings, monkeypatch):
    engine = create_engine(f"sqlite:///{tmp_path / 'embedded.db'}", poolclass=NullPool)
    config = alembic_config()
    config.attributes["connection"] = engine
    command.upgrade(config, "head")
    with Session(engine) as session:
        for _ in range(3):
            audit.record(session, actor=audit.OPERATOR, action="cli.jobs.list", resource="jobs", settings=settings)
        session.commit()
        assert audit.verify(session, settings=settings).rows == 3
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text("UPDATE audit_log SET action = 'x' WHERE seq = 2"))
    with pytest.raises(DBAPIError, match="append-only"):
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    engine.dispose()
