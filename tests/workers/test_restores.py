"""Restores that cannot go wrong, run as an operator runs them: the real `assistant` command.

A restore refuses a target of the other format without writing anything, refuses a
tampered file on one line, writes only private files, re-applies the erasures made since
the backup (so an erased person cannot sign in again), and a verification fails a backup
whose secrets the current ENCRYPTION_KEYS cannot read.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from shared import backups, db
from shared.models import AuditEvent, Backup, Base, GoogleIntegration, User
from tests.factories import load_job
from tests.ops.runbook import run_block
from tests.support import PASSWORD, ROOT, WorkerProcess, wait_for_job, wait_until

ASSISTANT = os.path.join(os.path.dirname(sys.executable), "assistant")
HERE = "tests/workers/test_restores.py"  # the runbook's blocks marked as run by this file


def assistant(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess:
    """The operator's command, in a shell's usual umask (022: files 0644 unless we say otherwise)."""
    return subprocess.run([ASSISTANT, *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=180, preexec_fn=lambda: os.umask(0o022))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def scratch_database():
    """An empty PostgreSQL database beside the test one, dropped afterwards."""
    engine = db.get_engine()
    name = f"{make_url(engine.url).database}_scratch_{uuid.uuid4().hex[:6]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(engine.url).set(database=name).render_as_string(hide_password=False)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tables_of(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return inspect(connection).get_table_names()
    finally:
        engine.dispose()


def postgres_backup() -> dict:
    made = assistant("backup", "create")
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)["backup"]


def sqlite_backup(tmp_path: Path, settings) -> Backup:
    """A backup of an SQLite database (the embedded default), recorded in the live database."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = create_engine(f"sqlite:///{tmp_path / 'embedded.db'}", poolclass=NullPool)
    Base.metadata.create_all(source)
    try:
        with db.session_scope() as session:
            return backups.create_backup(session=session, engine=source, settings=settings)
    finally:
        source.dispose()


# -- the wrong target is refused, nothing written -------------------------------------------


def test_an_sqlite_backup_is_not_restored_into_a_postgresql_url(tmp_path, settings, scratch_database):
    made = sqlite_backup(tmp_path / "source", settings)
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    result = assistant("backup", "restore", str(made.id), "--target-url", scratch_database, cwd=cwd)

    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "format mismatch" in line and "sqlite" in line and "PostgreSQL" in line
    assert "Traceback" not in result.stderr and "nothing was restored" in line
    assert list(cwd.iterdir()) == []  # the bug this prevents: a SQLite file named after the database
    assert tables_of(scratch_database) == []


def test_a_postgresql_backup_is_not_restored_into_an_sqlite_file_nor_a_url_of_no_database(tmp_path, user):
    made = postgres_backup()
    cwd, target = tmp_path / "cwd", tmp_path / "target" / "restored.db"
    cwd.mkdir()

    into_sqlite = assistant("backup", "restore", made["id"], "--target-url", f"sqlite:///{target}", cwd=cwd)
    into_mysql = assistant("backup", "restore", made["id"], "--target-url", "mysql://db/assistant", cwd=cwd)

    assert into_sqlite.returncode == 2, into_sqlite.stderr
    [line] = into_sqlite.stderr.strip().splitlines()
    assert "format mismatch" in line and "pg_custom" in line and "an SQLite file" in line
    assert into_mysql.returncode == 2 and "format mismatch" in into_mysql.stderr
    assert list(cwd.iterdir()) == [] and not target.parent.exists()

    # Over the live database: refused without --yes, saying what to stop first.
    live = assistant("backup", "restore", made["id"])
    assert live.returncode == 1
    assert "--yes" in live.stderr and "stop web, worker and beat" in live.stderr


def test_a_tampered_backup_is_refused_on_one_line(settings, user, scratch_database):
    made = postgres_backup()
    path = settings.backup_dir / made["filename"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    result = assistant("backup", "restore", made["id"], "--target-url", scratch_database)

    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "corrupted" in line and "Traceback" not in result.stderr
    assert tables_of(scratch_database) == []


# -- private files ----------------------------------------------------------------------------


def test_backups_and_their_directories_are_private(tmp_path, user):
    backup_dir = tmp_path / "new" / "backups"

    made = assistant("backup", "create", BACKUP_DIR=str(backup_dir))

    assert made.returncode == 0, made.stderr
    filename = json.loads(made.stdout)["backup"]["filename"]
    assert mode(backup_dir / filename) == 0o600
    assert mode(backup_dir / f"{filename}.json") == 0o600  # its record, read when the database is lost
    assert mode(backup_dir) == 0o700 and mode(backup_dir.parent) == 0o700
    assert sorted(p.name for p in backup_dir.iterdir()) == [filename, f"{filename}.json"]  # no staging file left


def test_a_restored_sqlite_database_is_private(tmp_path, settings):
    made = sqlite_backup(tmp_path / "source", settings)
    target = tmp_path / "restored" / "assistant.db"

    result = assistant("backup", "restore", str(made.id), "--target-url", f"sqlite:///{target}")

    assert result.returncode == 0, result.stderr
    assert mode(target) == 0o600 and mode(target.parent) == 0o700


@pytest.mark.worker
def test_exports_and_the_erasure_journal_are_private(client, settings, user, headers, worker):
    job = client.post("/v1/jobs", headers=headers, json={"type": "account.export", "params": {}})
    assert wait_for_job(client, job.json["id"], headers, timeout=90)["status"] == "succeeded"

    export = settings.artifacts_dir / str(user.id) / job.json["id"] / "export.zip"
    assert mode(export) == 0o600
    assert mode(export.parent) == 0o700 and mode(export.parent.parent) == 0o700

    erased = client.post("/v1/jobs", headers=headers, json={"type": "account.delete", "params": {}})
    assert erased.status_code == 202
    journal = settings.backup_dir / "erasure-journal"
    from shared.erasures import erasure_id

    entry = journal / f"{erasure_id(settings.erasure_journal_keys[0], user.id)}.json"
    wait_until(entry.exists, timeout=60, message="the erasure to be journaled")
    assert mode(entry) == 0o600
    assert str(user.id) not in entry.read_text() and user.email not in entry.read_text()


@pytest.mark.worker
def test_an_erasure_waits_while_its_journal_cannot_be_written(tmp_path, client, user, headers, worker):
    """Journaled first: an erasure missing from the journal would come back with the next restore."""
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    with worker.paused():
        stuck = WorkerProcess({"BACKUP_DIR": str(blocked / "backups")}).start()
        try:
            submitted = client.post("/v1/jobs", headers=headers, json={"type": "account.delete", "params": {}})
            assert submitted.status_code == 202, submitted.json

            wait_until(lambda: "erasure journal" in (load_job(submitted.json["id"]).progress_message or ""),
                       timeout=60, message="the job to retry for want of the journal")
            assert load_job(submitted.json["id"]).status == "queued"  # to be tried again, not failed nor done
            assert not db_has_no_user(user.id)
        finally:
            stuck.stop()


# -- erasures survive a restore ------------------------------------------------------------------


def sign_in(server, email: str) -> requests.Response:
    return requests.post(f"{server.url}/v1/auth/login", json={"email": email, "password": PASSWORD}, timeout=10)


def users_in(url: str) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return set(connection.execute(text("SELECT email FROM users")).scalars())
    finally:
        engine.dispose()


@pytest.mark.worker
def test_an_erased_user_stays_erased_after_a_restore(live_server, worker, settings, scratch_database):
    """Erase after a backup; restore into a scratch database, then over the live one: still gone."""
    url = live_server.url
    email, kept = f"erased-{uuid.uuid4().hex[:6]}@example.com", f"kept-{uuid.uuid4().hex[:6]}@example.com"
    for address in (email, kept):
        assert requests.post(f"{url}/v1/auth/register", json={"email": address, "password": PASSWORD},
                             timeout=10).status_code == 201
    tokens = sign_in(live_server, email).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    made = postgres_backup()

    erased = requests.post(f"{url}/v1/jobs", headers=bearer, json={"type": "account.delete", "params": {}},
                           timeout=10)
    assert erased.status_code == 202
    wait_until(lambda: sign_in(live_server, email).status_code == 401, timeout=60, message="the erasure")

    # Into a scratch database, as the runbook says: the backup still holds the user; the restore erases them again.
    into_scratch = run_block(HERE, "restore-scratch", values={"BACKUP_ID": made["id"], "SCRATCH_URL": scratch_database})
    assert into_scratch.returncode == 0, into_scratch.stderr
    assert "erased again 1 user(s)" in into_scratch.stdout
    assert email not in users_in(scratch_database) and kept in users_in(scratch_database)
    engine = create_engine(scratch_database, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM refresh_tokens r LEFT JOIN users u "
                                           "ON u.id = r.user_id WHERE u.id IS NULL")).scalar() == 0
            assert connection.execute(text("SELECT count(*) FROM audit_events WHERE event = 'account.deleted'")
                                      ).scalar() == 1  # the erasure is on record in the restored database too
    finally:
        engine.dispose()

    # Over the live database, web and worker stopped as the runbook says (the api's pool is idle).
    with worker.paused():
        over_live = run_block(HERE, "restore-live", values={"BACKUP_ID": made["id"]})
    assert over_live.returncode == 0, over_live.stderr
    assert "erased again 1 user(s)" in over_live.stdout

    assert sign_in(live_server, email).status_code == 401
    refreshed = requests.post(f"{url}/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}, timeout=10)
    assert refreshed.status_code == 401
    assert requests.get(f"{url}/v1/me", headers=bearer, timeout=10).status_code == 401
    assert sign_in(live_server, kept).status_code == 200  # everyone else is back as they were


def test_the_journal_alone_erases_again_when_the_live_database_forgot(settings, user, other_user,
                                                                      scratch_database):
    """A point-in-time recovery (or a lost server) leaves no audit record: the journal serves."""
    from shared import erasures

    made = postgres_backup()
    erasures.record(settings=settings, user_id=user.id)
    with db.session_scope() as session:
        session.execute(AuditEvent.__table__.delete())
        session.delete(session.get(User, user.id))

    backup = _backup_row(made["id"])
    with backups.fetched(settings, backup) as path:  # restored by other means, as pgBackRest would
        backups.restore(path, target_url=scratch_database, fmt=backup.format)
    assert user.email in users_in(scratch_database)

    result = run_block(HERE, "reapply-erasures", values={"RESTORED_URL": scratch_database})

    assert result.returncode == 0, result.stderr
    assert "erased again 1 user(s)" in result.stdout
    assert users_in(scratch_database) & {user.email, other_user.email} == {other_user.email}


def test_journal_entries_made_under_an_older_key_still_match(monkeypatch, settings, user, scratch_database):
    from shared import erasures

    made = postgres_backup()
    erasures.record(settings=settings, user_id=user.id)
    backup = _backup_row(made["id"])
    with backups.fetched(settings, backup) as path:
        backups.restore(path, target_url=scratch_database, fmt=backup.format)

    rotated = assistant("backup", "reapply-erasures", "--target-url", scratch_database,
                        ERASURE_JOURNAL_KEY=f"{'n' * 40},{settings.erasure_journal_keys[0]}")
    assert rotated.returncode == 0, rotated.stderr
    assert user.email not in users_in(scratch_database)


@pytest.mark.worker
def test_a_lost_database_is_restored_from_the_storage_alone_and_erasures_come_from_the_journal(
        client, user, headers, other_user, worker, scratch_database):
    """A new, empty server: no row names the backup, no audit record remembers the erasure."""
    postgres_backup()
    erased = client.post("/v1/jobs", headers=headers, json={"type": "account.delete", "params": {}})
    assert erased.status_code == 202
    wait_until(lambda: db_has_no_user(user.id), timeout=60, message="the erasure")

    plain_url = scratch_database.replace("postgresql+psycopg2://", "postgresql://")  # as an operator writes it
    result = run_block(HERE, "restore-lost", values={}, env={"DATABASE_URL": plain_url})

    assert result.returncode == 0, result.stderr
    assert "erased again 1 user(s)" in result.stdout and "from journal" in result.stdout
    assert users_in(scratch_database) >= {other_user.email} and user.email not in users_in(scratch_database)


def db_has_no_user(user_id) -> bool:
    with db.session_scope() as session:
        return session.get(User, user_id) is None


def _backup_row(backup_id: str) -> Backup:
    with db.session_scope() as session:
        row = session.get(Backup, uuid.UUID(backup_id))
        session.expunge(row)
        return row


# -- keys: a backup whose secrets cannot be read fails verification -------------------------------


def store_google_tokens(user, key: str) -> None:
    fernet = Fernet(key.encode())
    with db.session_scope() as session:
        session.add(GoogleIntegration(user_id=user.id, scopes=[],
                                      refresh_token_encrypted=fernet.encrypt(b"refresh").decode(),
                                      access_token_encrypted=fernet.encrypt(b"access").decode()))


def test_verify_checks_the_current_keys_decrypt_the_backups_secrets(user):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    store_google_tokens(user, old)
    before = postgres_backup()  # under the old key

    lost = assistant("backup", "verify", ENCRYPTION_KEYS=new)

    assert lost.returncode == 1
    [line] = lost.stderr.strip().splitlines()
    assert "backup_keys_mismatch" in line and "google_integrations" in line and old not in line

    # The runbook's rotation: re-encrypt, back up, and the new backup needs the new key alone.
    rotated = run_block(HERE, "rotate-keys", values={"NEW_KEY": new, "OLD_KEY": old})
    assert rotated.returncode == 0, rotated.stderr
    assert "re-encrypted 2 secrets" in rotated.stdout and "2 stored secrets decrypt" in rotated.stdout
    # The older backup was taken by hand: kept BACKUP_KEEP_MANUAL_DAYS, its key in escrow (the runbook).
    with db.session_scope() as session:
        assert before["filename"] in session.scalars(select(Backup.filename)).all()


@pytest.mark.worker
def test_the_nightly_verify_job_fails_a_backup_under_other_keys(client, user, admin_headers, worker):
    store_google_tokens(user, Fernet.generate_key().decode())  # the worker has no such key
    made = client.post("/v1/jobs", headers=admin_headers, json={"type": "ops.backup", "params": {}})
    assert wait_for_job(client, made.json["id"], admin_headers, timeout=120)["status"] == "succeeded"

    checked = client.post("/v1/jobs", headers=admin_headers, json={"type": "ops.verify_backup", "params": {}})
    job = wait_for_job(client, checked.json["id"], admin_headers, timeout=120)

    assert job["status"] == "failed" and job["error"]["code"] == "backup_keys_mismatch"
    with db.session_scope() as session:
        assert session.scalars(select(Backup)).one().verify_status == "failed"
