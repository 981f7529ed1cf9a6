"""Backups: dump, fingerprint, verify by restoring, restore, and keep 7 daily + 4 weekly.

PostgreSQL: `pg_dump --format=custom` inside a REPEATABLE READ transaction whose snapshot
it shares (`--snapshot`), so the per-table row counts and checksums recorded beside the
file describe exactly what the file holds. The embedded SQLite default uses SQLite's
online backup API instead. Verification restores the file into a scratch database and
compares every table's fingerprint with the recorded one; any difference fails loudly.

Backup files live in BACKUP_DIR or, with OBJECT_STORAGE_URL, in the bucket (shared.storage),
so a backup outlives the host that made it. Shared by the maintenance jobs (workers.backups)
and the operators' CLI (`assistant backup`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, inspect, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from shared.artifacts import file_digest
from shared.models import Backup, utcnow
from shared.settings import Settings
from shared.storage import PRIVATE_FILE, backup_storage, private_dir

log = logging.getLogger(__name__)

DUMP_TIMEOUT_SECONDS = 3000  # below ops.backup's soft time limit


class BackupError(Exception):
    """A backup could not be made, verified or restored; the message (one line) says why."""

    code = "backup_failed"

    def __init__(self, message: str):
        # Operators read it on one line, in a terminal or a job's error: tools' stderr is multi-line.
        super().__init__(" ".join(str(message).split()))


class VerificationFailed(BackupError):
    code = "backup_verification_failed"


class KeysMismatch(VerificationFailed):
    """The backup holds secrets that the current ENCRYPTION_KEYS cannot decrypt."""

    code = "backup_keys_mismatch"


class Refused(BackupError):
    """A restore that would do the wrong thing, refused before anything is written."""

    code = "backup_restore_refused"


# What each format restores into: a pg_restore archive into PostgreSQL, an SQLite file into SQLite.
FORMATS = {"pg_custom": ("postgresql", "a PostgreSQL dump", "a PostgreSQL database URL (postgresql://...)"),
           "sqlite": ("sqlite", "an SQLite file", "an SQLite URL (sqlite:///path/to/file.db)")}
TARGETS = {"postgresql": "a PostgreSQL database", "sqlite": "an SQLite file"}  # what a target URL names
# A verification decrypts up to this many values of each encrypted column (shared.crypto).
SECRETS_SAMPLE = 20


# -- fingerprints ------------------------------------------------------------------------


def _canonical(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def fingerprints(connection: Connection) -> dict[str, dict]:
    """{table: {"rows", "checksum"}} for every table, rows hashed in primary-key order."""
    result = {}
    names = inspect(connection).get_table_names()
    for name in sorted(names):
        table = Table(name, MetaData(), autoload_with=connection)
        order = list(table.primary_key.columns) or list(table.columns)
        digest = hashlib.sha256()
        rows = 0
        for row in connection.execute(select(table).order_by(*order)):
            digest.update(json.dumps([_canonical(v) for v in row], sort_keys=True, default=str).encode())
            digest.update(b"\n")
            rows += 1
        result[name] = {"rows": rows, "checksum": digest.hexdigest()}
    return result


def compare(expected: dict, actual: dict) -> list[str]:
    """What differs between two fingerprint sets, one line per table."""
    problems = []
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name), actual.get(name)
        if want is None:
            problems.append(f"{name}: in the restore but not recorded")
        elif got is None:
            problems.append(f"{name}: recorded ({want['rows']} rows) but missing from the restore")
        elif want != got:
            problems.append(f"{name}: recorded {want['rows']} rows / {want['checksum'][:12]}, "
                            f"restored {got['rows']} rows / {got['checksum'][:12]}")
    return problems


# -- making one --------------------------------------------------------------------------


def _libpq(engine_or_url) -> tuple[str, dict]:
    """A libpq connection URL without the password, and an environment carrying it."""
    url = make_url(engine_or_url.url if isinstance(engine_or_url, Engine) else engine_or_url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = url.password
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(args: list[str], env: dict, what: str) -> None:
    try:
        completed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=DUMP_TIMEOUT_SECONDS)
    except FileNotFoundError:
        raise BackupError(f"{args[0]} is not installed (PostgreSQL client tools are needed)") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what} took longer than {DUMP_TIMEOUT_SECONDS} s") from None
    if completed.returncode != 0:
        raise BackupError(f"{what} failed: {completed.stderr.strip()[-2000:]}")


def create_backup(*, session: Session, engine: Engine, settings: Settings, now: datetime | None = None,
                  manual: bool = False) -> Backup:
    """Dump the database into the backup storage and record it (the row joins `session`; the caller commits)."""
    now = now or utcnow()
    storage = backup_storage(settings)
    backup_id = uuid.uuid4()
    postgres = engine.dialect.name == "postgresql"
    filename = f"assistant-{now:%Y%m%dT%H%M%SZ}-{backup_id.hex[:8]}.{'dump' if postgres else 'sqlite3'}"
    partial = storage.staging_dir() / f".{filename}.part"
    partial.touch(mode=PRIVATE_FILE)  # pg_dump writes into it: never readable by others, even half-written
    os.chmod(partial, PRIVATE_FILE)
    try:
        tables = _dump_postgres(engine, partial) if postgres else _dump_sqlite(engine, partial)
        digest, size = file_digest(partial)
        storage.put(filename, source=partial)
    finally:
        partial.unlink(missing_ok=True)
    backup = Backup(id=backup_id, filename=filename, format="pg_custom" if postgres else "sqlite", size=size,
                    sha256=digest, tables=tables, created_at=now, manual=manual)
    # Its record beside it too: the database that holds the row may be the one that was lost.
    storage.put(manifest_key(filename), data=json.dumps({**backup_to_dict(backup), "tables": tables}).encode(),
                content_type="application/json")
    session.add(backup)
    session.flush()
    log.info("backup %s written to %s: %d bytes, %d tables", filename, storage.where(filename), size, len(tables))
    return backup


def _dump_postgres(engine: Engine, target: Path) -> dict:
    url, env = _libpq(engine)
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection:
        with connection.begin():
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            _run(["pg_dump", "--format=custom", f"--snapshot={snapshot}", "--no-owner", "--no-privileges",
                  f"--file={target}", f"--dbname={url}"], env, "pg_dump")
            # Still inside the snapshot pg_dump used: these describe the file exactly.
            return fingerprints(connection)


def _sqlite_path(engine_or_url) -> Path:
    url = make_url(engine_or_url.url if isinstance(engine_or_url, Engine) else engine_or_url)
    return Path(url.database)


def _dump_sqlite(engine: Engine, target: Path) -> dict:
    source = sqlite3.connect(_sqlite_path(engine), timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # an online, consistent copy, even while others write
    finally:
        copy.close()
        source.close()
    # The copy is the snapshot: fingerprint it rather than the live file.
    return _sqlite_fingerprints(target)


def _sqlite_fingerprints(path: Path) -> dict:
    scratch = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with scratch.connect() as connection:
            check = connection.exec_driver_sql("PRAGMA integrity_check").scalar()
            if check != "ok":
                raise VerificationFailed(f"SQLite integrity check failed: {check}")
            return fingerprints(connection)
    except sqlite3.DatabaseError as exc:
        raise VerificationFailed(f"not a readable SQLite database: {exc}") from None
    finally:
        scratch.dispose()


# -- the record kept beside each file ----------------------------------------------------------

MANIFEST_SUFFIX = ".json"


def manifest_key(filename: str) -> str:
    return f"{filename}{MANIFEST_SUFFIX}"


def from_manifest(*, settings: Settings, filename: str) -> Backup:
    """The backup `filename` as recorded beside it in the backup storage (a detached row)."""
    storage = backup_storage(settings)
    name = Path(filename).name  # a name in the storage, whatever path was pasted
    with tempfile.TemporaryDirectory(prefix="assistant-backup-") as scratch:
        path = Path(scratch) / "manifest.json"
        if not storage.fetch(manifest_key(name), path):
            raise BackupError(f"no backup {name!r} in {storage.where()} (no {manifest_key(name)} beside it)")
        try:
            record = json.loads(path.read_text())
            if record["filename"] != name:
                raise ValueError(f"it names another file, {record['filename']!r}")
            return Backup(id=uuid.UUID(record["id"]), filename=record["filename"], format=record["format"],
                          size=record["size"], sha256=record["sha256"], tables=record["tables"],
                          created_at=datetime.fromisoformat(record["created_at"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"the record of {name} is unreadable: {exc}") from None


def stored(*, settings: Settings) -> list[str]:
    """The file names of the backups in the backup storage that have their record beside them, newest first."""
    keys = set(backup_storage(settings).keys(""))
    return sorted((k.removesuffix(MANIFEST_SUFFIX) for k in keys
                   if "/" not in k and k.endswith(MANIFEST_SUFFIX) and k.removesuffix(MANIFEST_SUFFIX) in keys),
                  reverse=True)


# -- verifying and restoring ---------------------------------------------------------------


@dataclass
class Verification:
    backup_id: uuid.UUID
    tables: int
    rows: int
    secrets: int = 0  # stored secrets decrypted with the current ENCRYPTION_KEYS


def secret_columns() -> list[tuple[str, str]]:
    """(table, column) of every Fernet-encrypted column of the models (named `*_encrypted`)."""
    from shared.models import Base

    return [(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns if c.name.endswith("_encrypted")]


def check_secrets(connection: Connection, settings: Settings) -> int:
    """Decrypt a sample of each encrypted column with the current keys; returns how many were read.

    Raises KeysMismatch when one cannot be: restoring this backup would bring back secrets
    nobody can read (a Google connection that must be made again, mail bodies lost).
    """
    from shared import crypto

    present = set(inspect(connection).get_table_names())
    checked = 0
    for table_name, column in secret_columns():
        if table_name not in present or column not in {c["name"] for c in inspect(connection).get_columns(table_name)}:
            continue  # a backup made before this column existed
        table = Table(table_name, MetaData(), autoload_with=connection)
        values = connection.execute(select(table.c[column]).where(table.c[column].is_not(None))
                                    .limit(SECRETS_SAMPLE)).scalars().all()
        for value in values:
            try:
                crypto.decrypt(value, settings)
            except (crypto.DecryptionFailed, crypto.EncryptionNotConfigured) as exc:
                raise KeysMismatch(f"backup_keys_mismatch: {table_name}.{column} holds a secret the current "
                                   f"ENCRYPTION_KEYS cannot decrypt ({exc}) Put the key this backup was made "
                                   "under back into ENCRYPTION_KEYS (after the newest) before restoring it; "
                                   "see ops/RUNBOOK.md, Keys: rotation and escrow.") from None
            checked += 1
    return checked


def check_target(*, fmt: str, target_url: str) -> None:
    """Refuse a target that cannot hold this format (an SQLite file never goes into a PostgreSQL URL)."""
    try:
        backend = make_url(target_url).get_backend_name()
    except Exception:  # noqa: BLE001 (SQLAlchemy raises several kinds for a malformed URL)
        raise Refused(f"--target-url is not a database URL: {target_url.split('@')[-1]!r}") from None
    if fmt not in FORMATS:
        raise Refused(f"the backup's format {fmt!r} is unknown; nothing was restored")
    wanted, kind, described = FORMATS[fmt]
    if backend != wanted:
        shown = make_url(target_url).render_as_string(hide_password=True)
        raise Refused(f"backup format mismatch: the backup is {kind} ({fmt}) and restores only into {described}; "
                      f"the target {shown} is {TARGETS.get(backend, f'a {backend} database, which no backup fits')}; "
                      "nothing was restored")
    if fmt == "sqlite" and not make_url(target_url).database:
        raise Refused("the SQLite target names no file (sqlite:///path/to/file.db); nothing was restored")


@contextmanager
def fetched(settings: Settings, backup: Backup) -> Iterator[Path]:
    """The backup's file on local disk, checked against its recorded sha256 and size.

    From object storage it is downloaded to a temporary file, removed afterwards.
    """
    storage = backup_storage(settings)
    path = storage.local_path(backup.filename)
    scratch = None
    if path is None:
        scratch = tempfile.TemporaryDirectory(prefix="assistant-backup-")
        path = Path(scratch.name) / backup.filename
        if not storage.fetch(backup.filename, path):
            scratch.cleanup()
            raise VerificationFailed(f"backup file {backup.filename} is missing from {storage.where()}")
    elif not path.is_file():
        raise VerificationFailed(f"backup file {backup.filename} is missing from {storage.where()}")
    try:
        digest, size = file_digest(path)
        if digest != backup.sha256 or size != backup.size:
            raise VerificationFailed(f"backup file {backup.filename} is corrupted: sha256 {digest[:12]} "
                                     f"({size} bytes), recorded {backup.sha256[:12]} ({backup.size} bytes)")
        yield path
    finally:
        if scratch is not None:
            scratch.cleanup()


def verify_backup(*, engine: Engine, settings: Settings, backup: Backup) -> Verification:
    """Restore `backup` into a scratch database and compare it with what was recorded."""
    from sqlalchemy.exc import DBAPIError

    with fetched(settings, backup) as path:
        if backup.format == "pg_custom":
            actual, secrets = _restore_into_scratch_postgres(engine, path, settings)
        else:
            with tempfile.TemporaryDirectory() as scratch_dir:
                scratch = Path(scratch_dir) / "verify.sqlite3"
                shutil.copyfile(path, scratch)
                try:
                    actual = _sqlite_fingerprints(scratch)
                    secrets = _sqlite_secrets(scratch, settings)
                except DBAPIError as exc:
                    raise VerificationFailed(f"the restored copy cannot be read: {exc}") from None
    problems = compare(backup.tables, actual)
    if problems:
        raise VerificationFailed(f"backup {backup.filename} does not restore to what was recorded: "
                                 + "; ".join(problems))
    return Verification(backup_id=backup.id, tables=len(actual), rows=sum(t["rows"] for t in actual.values()),
                        secrets=secrets)


def _sqlite_secrets(path: Path, settings: Settings) -> int:
    scratch = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with scratch.connect() as connection:
            return check_secrets(connection, settings)
    finally:
        scratch.dispose()


def _restore_into_scratch_postgres(engine: Engine, path: Path, settings: Settings) -> tuple[dict, int]:
    name = f"{make_url(engine.url).database}_verify_{uuid.uuid4().hex[:8]}"[:63]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    scratch_url = make_url(engine.url).set(database=name)
    try:
        restore(path, target_url=scratch_url.render_as_string(hide_password=False), fmt="pg_custom")
        scratch = create_engine(scratch_url, poolclass=NullPool)
        try:
            with scratch.connect() as connection:
                return fingerprints(connection), check_secrets(connection, settings)
        finally:
            scratch.dispose()
    finally:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def restore(path: Path, *, target_url: str, fmt: str) -> None:
    """Restore a backup file into the database at `target_url` (replacing what it holds)."""
    check_target(fmt=fmt, target_url=target_url)
    if fmt == "pg_custom":
        url, env = _libpq(target_url)
        try:
            _run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--exit-on-error",
                  "--single-transaction", f"--dbname={url}", str(path)], env, "pg_restore")
        except BackupError as exc:
            raise VerificationFailed(str(exc)) from None
    else:
        target = _sqlite_path(target_url)
        private_dir(target.parent)
        partial = target.with_name(f".{target.name}.restore")
        partial.unlink(missing_ok=True)
        partial.touch(mode=PRIVATE_FILE)  # the database holds what the backup held: ours alone
        os.chmod(partial, PRIVATE_FILE)
        shutil.copyfile(path, partial)
        for suffix in ("-wal", "-shm"):  # a stale write-ahead log must not replay onto the copy
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(partial, target)


@dataclass
class Restored:
    filename: str
    target: str  # the target's URL, password hidden
    reapplied: list[uuid.UUID]  # users erased again: erased after the backup was taken
    erasure_sources: list[str]


def restore_backup(*, settings: Settings, backup: Backup, target_url: str, live: Engine | None,
                   replacing_live: bool) -> Restored:
    """Restore `backup` into `target_url`, then erase again everyone erased since it was taken.

    Refused before anything is read or written when the target cannot hold the backup's
    format. The erasures are read first, from the journal and from `live` (the live
    database, when it can still be read), since restoring over it replaces its audit_events.
    """
    from shared import erasures

    check_target(fmt=backup.format, target_url=target_url)
    known = erasures.known(settings=settings, live=live)
    if live is not None:
        live.dispose()  # no pooled connection of ours may hold the database being replaced
    with fetched(settings, backup) as path:  # from the bucket, with OBJECT_STORAGE_URL
        restore(path, target_url=target_url, fmt=backup.format)
    reapplied = reapply_erasures(settings=settings, target_url=target_url, known=known, replacing_live=replacing_live)
    return Restored(filename=backup.filename, target=make_url(target_url).render_as_string(hide_password=True),
                    reapplied=reapplied, erasure_sources=known.sources)


def reapply_erasures(*, settings: Settings, target_url: str, known=None, live: Engine | None = None,
                     replacing_live: bool = False) -> list[uuid.UUID]:
    """Erase again, in the database at `target_url`, every user the journal (and `live`) say was erased.

    For a database restored by other means, such as a point-in-time recovery. Tokens of the
    users erased again stop at once when the target is the live database.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from shared import erasures, revocation

    known = known if known is not None else erasures.known(settings=settings, live=live)
    target = create_engine(target_url, poolclass=NullPool)
    try:
        with target.begin() as connection:
            if not inspect(connection).has_table("users"):
                shown = make_url(target_url).render_as_string(hide_password=True)
                raise BackupError(f"{shown} has no users table: it is not the assistant's database")
            reapplied = erasures.reapply(connection=connection, settings=settings, erasures=known)
    except SQLAlchemyError as exc:
        shown = make_url(target_url).render_as_string(hide_password=True)
        raise BackupError(f"erasures could not be applied again in {shown}: {str(exc).splitlines()[0]}; run "
                          "`assistant backup reapply-erasures` once it answers") from None
    finally:
        target.dispose()
    if replacing_live:
        for user_id in reapplied:
            revocation.publish_version(user_id, revocation.DELETED, settings)
    if reapplied:
        log.warning("%d user(s) erased after the backup was taken were erased again", len(reapplied))
    return reapplied


# -- retention -----------------------------------------------------------------------------


def backups_to_keep(created: list[tuple[uuid.UUID, datetime]], *, daily: int, weekly: int) -> set[uuid.UUID]:
    """The newest backup of each of the last `daily` days that have one, and of the last `weekly` ISO weeks."""
    keep: set[uuid.UUID] = set()
    days: set[date] = set()
    weeks: set[tuple[int, int]] = set()
    for backup_id, when in sorted(created, key=lambda item: item[1], reverse=True):
        day, week = when.date(), tuple(when.isocalendar())[:2]
        if day not in days and len(days) < daily:
            days.add(day)
            keep.add(backup_id)
        if week not in weeks and len(weeks) < weekly:
            weeks.add(week)
            keep.add(backup_id)
    return keep


def prune(*, session: Session, settings: Settings, now: datetime | None = None) -> list[str]:
    """Delete backups outside the retention policy (rows and files); returns their file names.

    Kept whatever the daily/weekly rule says: a backup taken by hand for BACKUP_KEEP_MANUAL_DAYS
    (an operator's "before the release" backup must not vanish with the next nightly one),
    and the newest verified backup, the one a restore can count on.
    """
    now = now or utcnow()
    rows = session.execute(select(Backup.id, Backup.created_at, Backup.filename, Backup.manual,
                                  Backup.verify_status)).all()
    keep = backups_to_keep([(r.id, r.created_at) for r in rows], daily=settings.backup_keep_daily,
                           weekly=settings.backup_keep_weekly)
    manual_since = now - timedelta(days=settings.backup_keep_manual_days)
    keep |= {r.id for r in rows if r.manual and r.created_at >= manual_since}
    verified = [r for r in rows if r.verify_status == "ok"]
    if verified:
        keep.add(max(verified, key=lambda r: (r.created_at, r.id)).id)
    removed = [row for row in rows if row.id not in keep]
    if removed:
        backup_storage(settings).delete([key for row in removed for key in (row.filename, manifest_key(row.filename))])
        session.execute(Backup.__table__.delete().where(Backup.id.in_([row.id for row in removed])))
    return [row.filename for row in removed]


def newest(session: Session) -> Backup | None:
    return session.scalars(select(Backup).order_by(Backup.created_at.desc(), Backup.id.desc()).limit(1)).first()


def backup_to_dict(backup: Backup) -> dict:
    return {
        "id": str(backup.id),
        "filename": backup.filename,
        "format": backup.format,
        "size": backup.size,
        "sha256": backup.sha256,
        "tables": len(backup.tables or {}),
        "rows": sum(t["rows"] for t in (backup.tables or {}).values()),
        "created_at": backup.created_at.isoformat(),
        "verified_at": backup.verified_at.isoformat() if backup.verified_at else None,
        "verify_status": backup.verify_status,
        "verify_message": backup.verify_message,
        "manual": bool(backup.manual),
    }


# -- what the `assistant backup` commands and the ops.* jobs both do ---------------------------


class NoBackup(BackupError):
    """There is no backup to verify (none yet, or no such id)."""


def back_up_now(*, session: Session, engine: Engine, settings: Settings, manual: bool) -> dict:
    """Make a backup, then apply retention; the caller commits. `manual`: taken by hand, kept longer."""
    made = create_backup(session=session, engine=engine, settings=settings, manual=manual)
    pruned = prune(session=session, settings=settings)
    return {"backup": backup_to_dict(made), "pruned": pruned}


def verify_and_record(*, session: Session, engine: Engine, settings: Settings,
                      backup_id: uuid.UUID | None = None) -> tuple[Backup, Verification]:
    """Verify a backup (default: the newest) and record the verdict on it.

    A failed verification is committed on the backup before it is raised: the caller's
    failure must not roll back the record of it. A passed one is left to the caller's commit.
    """
    target = session.get(Backup, backup_id) if backup_id else newest(session)
    if target is None:
        raise NoBackup("There is no backup to verify." if backup_id is None else "No such backup.")
    try:
        outcome = verify_backup(engine=engine, settings=settings, backup=target)
    except BackupError as exc:
        target.verified_at, target.verify_status, target.verify_message = utcnow(), "failed", str(exc)[:4000]
        session.commit()
        raise
    target.verified_at, target.verify_status, target.verify_message = utcnow(), "ok", None
    return target, outcome
