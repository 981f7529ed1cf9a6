"""Backups on real PostgreSQL: backup -> verify -> restore gives identical tables; corruption fails loudly."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from shared import backups, db
from shared.cli import main
from shared.models import Backup, Base, User, utcnow
from tests.factories import make_task
from tests.support import wait_for_job


def submit(client, headers, job_type, params=None):
    response = client.post("/v1/jobs", headers=headers, json={"type": job_type, "params": params or {}})
    assert response.status_code == 202, response.json
    return wait_for_job(client, response.json["id"], headers, timeout=120)


def only_backup() -> Backup:
    with db.session_scope() as session:
        return session.scalars(select(Backup)).one()


@pytest.fixture
def fresh_database():
    """An empty PostgreSQL database beside the test one, dropped afterwards."""
    engine = db.get_engine()
    name = f"{make_url(engine.url).database}_restore_{uuid.uuid4().hex[:6]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(engine.url).set(database=name)
    yield url
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.worker
def test_backup_verify_and_restore_into_a_fresh_database_match(client, settings, user, admin_headers, worker,
                                                               fresh_database):
    for i in range(25):
        make_task(user, title=f"task {i}", tags=["x", str(i)])

    made = submit(client, admin_headers, "ops.backup")
    assert made["status"] == "succeeded", made
    checked = submit(client, admin_headers, "ops.verify_backup")
    assert checked["status"] == "succeeded", checked

    backup = only_backup()
    assert backup.verify_status == "ok" and backup.format == "pg_custom"
    assert backup.manual  # an admin's "Back up now", not beat's nightly one: kept BACKUP_KEEP_MANUAL_DAYS
    with db.session_scope() as session:  # the user, the admin, and the system account once a platform path made it
        users = session.scalar(select(func.count()).select_from(User))
    assert backup.tables["tasks"]["rows"] == 25 and backup.tables["users"]["rows"] == users >= 2
    assert (settings.backup_dir / backup.filename).is_file()

    result = CliRunner().invoke(main, ["backup", "restore", str(backup.id), "--target-url",
                                       fresh_database.render_as_string(hide_password=False)])
    assert result.exit_code == 0, result.output
    restored = create_engine(fresh_database, poolclass=NullPool)
    try:
        with restored.connect() as connection:
            assert backups.fingerprints(connection) == backup.tables
    finally:
        restored.dispose()

    listed = client.get("/v1/admin/backups", headers=admin_headers).json["items"]
    assert [b["id"] for b in listed] == [str(backup.id)] and listed[0]["verify_status"] == "ok"


@pytest.mark.worker
def test_a_corrupted_backup_file_fails_verification(client, settings, admin_headers, worker):
    submit(client, admin_headers, "ops.backup")
    backup = only_backup()
    path = settings.backup_dir / backup.filename
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    checked = submit(client, admin_headers, "ops.verify_backup")

    assert checked["status"] == "failed"
    assert checked["error"]["code"] == "backup_verification_failed"
    assert "corrupted" in checked["error"]["message"]
    assert only_backup().verify_status == "failed"


def test_a_restore_that_differs_from_the_record_fails_verification(settings, user):
    make_task(user, title="one")
    with db.session_scope() as session:
        backup = backups.create_backup(session=session, engine=db.get_engine(), settings=settings)
        # The file is intact (its sha256 matches) but the record says there was another task.
        backup.tables = {**backup.tables, "tasks": {"rows": 2, "checksum": "0" * 64}}

    with db.session_scope() as session:
        with pytest.raises(backups.VerificationFailed, match="tasks: recorded 2 rows"):
            backups.verify_backup(engine=db.get_engine(), settings=settings, backup=session.get(Backup, backup.id))


def test_the_cli_creates_lists_and_verifies(user):
    make_task(user)
    runner = CliRunner()

    created = runner.invoke(main, ["backup", "create"])
    listed = runner.invoke(main, ["backup", "list"])
    verified = runner.invoke(main, ["backup", "verify"])

    assert created.exit_code == 0, created.output
    backup = only_backup()
    assert backup.filename in listed.output
    assert verified.exit_code == 0 and "ok" in verified.output, verified.output
    refused = runner.invoke(main, ["backup", "restore", str(backup.id)])
    assert refused.exit_code != 0 and "--yes" in refused.output


def test_the_embedded_sqlite_default_backs_up_and_verifies(tmp_path, settings):
    engine = create_engine(f"sqlite:///{tmp_path / 'live.db'}", poolclass=NullPool)
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        for i in range(3):
            connection.execute(User.__table__.insert().values(
                id=uuid.uuid4(), email=f"u{i}@example.com", password_hash="x", role="user", timezone="UTC",
                digest_time="07:00", created_at=utcnow(), updated_at=utcnow()))
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        backup = backups.create_backup(session=session, engine=engine, settings=settings)
        session.commit()
        assert backup.format == "sqlite" and backup.tables["users"]["rows"] == 3
        assert backups.verify_backup(engine=engine, settings=settings, backup=backup).rows >= 3

        path = settings.backup_dir / backup.filename
        path.write_bytes(path.read_bytes()[:4096])
        with pytest.raises(backups.VerificationFailed, match="corrupted"):
            backups.verify_backup(engine=engine, settings=settings, backup=backup)
    engine.dispose()


def test_retention_keeps_seven_daily_and_four_weekly():
    start = utcnow().replace(hour=2, minute=30) - timedelta(days=60)
    created = [(uuid.uuid4(), start + timedelta(days=d, hours=h)) for d in range(61) for h in (0, 12)]

    keep = backups_to_keep = backups.backups_to_keep(created, daily=7, weekly=4)

    newest_first = sorted(created, key=lambda c: c[1], reverse=True)
    daily = [c[0] for c in newest_first[0:14:2]]  # the later backup of each of the last 7 days
    assert set(daily) <= keep
    assert 7 <= len(backups_to_keep) <= 11
    days = {c[1].date() for c in created if c[0] in keep}
    assert len(days) == len(keep)  # never two of one day
    assert min(days) >= (newest_first[0][1] - timedelta(weeks=4)).date()


def test_only_admins_list_backups_or_run_backup_jobs(client, headers, admin_headers):
    assert client.get("/v1/admin/backups", headers=headers).status_code == 403
    assert client.get("/v1/admin/backups").status_code == 401
    assert client.get("/v1/admin/backups", headers=admin_headers).json == {"items": [], "next_cursor": None}
    for job_type in ("ops.backup", "ops.verify_backup", "ops.retention"):
        response = client.post("/v1/jobs", headers=headers, json={"type": job_type, "params": {}})
        assert response.status_code == 422 and response.json["code"] == "unknown_job_type"


def test_the_system_user_that_owns_beat_jobs_cannot_sign_in(client):
    from shared.schedules import SYSTEM_EMAIL, system_user

    with db.session_scope() as session:
        system_user(session)
    response = client.post("/v1/auth/login", json={"email": SYSTEM_EMAIL, "password": "!"})
    assert response.status_code == 401


def test_retention_keeps_hand_made_backups_and_the_newest_verified(settings):
    """The operator's "before the release" backup outlives the nightly ones; so does the last good one."""

    now = utcnow()
    rows = {
        "verified_old": Backup(created_at=now - timedelta(days=30), verify_status="ok"),
        "manual_recent": Backup(created_at=now - timedelta(days=3, hours=1), manual=True),
        "nightly_same_day": Backup(created_at=now - timedelta(days=3)),  # the daily rule's pick of that day
        "manual_expired": Backup(created_at=now - timedelta(days=settings.backup_keep_manual_days + 1), manual=True),
        "nightly_today": Backup(created_at=now),
    }
    with db.session_scope() as session:
        for name, row in rows.items():
            row.id, row.filename, row.format, row.size, row.sha256 = uuid.uuid4(), f"{name}.dump", "pg_custom", 1, "0"
            session.add(row)
    strict = settings.replace(backup_keep_daily=1, backup_keep_weekly=0)

    with db.session_scope() as session:
        removed = backups.prune(session=session, settings=strict)

    assert sorted(removed) == ["manual_expired.dump", "nightly_same_day.dump"]
    with db.session_scope() as session:
        kept = set(session.scalars(select(Backup.filename)))
    assert kept == {"verified_old.dump", "manual_recent.dump", "nightly_today.dump"}


def test_the_cli_marks_its_backup_as_made_by_hand(user):
    assert CliRunner().invoke(main, ["backup", "create"]).exit_code == 0
    assert only_backup().manual is True
