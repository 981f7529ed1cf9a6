"""Artifacts and backups in S3-compatible object storage (OBJECT_STORAGE_URL), against moto's
S3 server on loopback: a real worker writes, the api redirects to a presigned URL, the
operator's `assistant backup` commands work from the bucket, and retention and erasure
delete there."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from datetime import timedelta

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.servers import ThrowawayRedis
from shared import backups, db
from shared.models import Artifact, Backup, utcnow
from tests.fakes.s3_server import CREDENTIALS, S3Server
from tests.support import ROOT, WorkerProcess, refresh_settings, wait_for_job, wait_until

pytestmark = pytest.mark.worker

BUCKET = "assistant-test"
PREFIX = f"deploy-{uuid.uuid4().hex[:6]}"
ASSISTANT = os.path.join(os.path.dirname(sys.executable), "assistant")


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def local_dirs(tmp_path_factory):
    return tmp_path_factory.mktemp("local")


@pytest.fixture(scope="module")
def stack(s3, local_dirs):
    """This process, a worker and the CLI all on object storage, with a broker of their own
    (the suite's shared worker, on local storage, must not take these jobs)."""
    monkeypatch = pytest.MonkeyPatch()
    broker = ThrowawayRedis().start()
    env = {
        "OBJECT_STORAGE_URL": f"s3://{BUCKET}/{PREFIX}",
        "S3_ENDPOINT_URL": s3.url,
        # Another name for the same server: what a presigned URL names is what clients reach.
        "S3_PUBLIC_ENDPOINT_URL": f"http://localhost:{s3.port}",
        "REDIS_URL": broker.url,
        # Nothing may land on local disk: these directories must stay empty.
        "ARTIFACTS_DIR": str(local_dirs / "artifacts"),
        "BACKUP_DIR": str(local_dirs / "backups"),
        **CREDENTIALS,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    refresh_settings()
    worker = WorkerProcess(env).start()
    try:
        yield env
    finally:
        worker.stop()
        monkeypatch.undo()
        refresh_settings()
        broker.destroy()


def keys(s3, under: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{under}")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def assistant(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([ASSISTANT, *args], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def fresh_database():
    engine = db.get_engine()
    name = f"{make_url(engine.url).database}_s3restore_{uuid.uuid4().hex[:6]}"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(engine.url).set(database=name)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_export_lands_in_the_bucket_and_downloads_through_a_presigned_redirect(stack, s3, user, headers,
                                                                                    local_dirs):
    from api import create_app
    from shared.settings import get_settings

    client = create_app(get_settings()).test_client()
    submitted = client.post("/v1/jobs", headers=headers, json={"type": "account.export", "params": {}})
    job = wait_for_job(client, submitted.json["id"], headers, timeout=90)
    assert job["status"] == "succeeded", job

    assert keys(s3, "artifacts/") == [f"{PREFIX}/artifacts/{user.id}/{job['id']}/export.zip"]
    assert not list(local_dirs.rglob("*.zip"))

    answer = client.get(f"/v1/jobs/{job['id']}/artifact", headers=headers)
    assert answer.status_code == 302 and answer.headers["Cache-Control"] == "private, no-store"
    location = answer.headers["Location"]
    assert location.startswith(f"http://localhost:{s3.port}/{BUCKET}/{PREFIX}/artifacts/")
    assert "X-Amz-Expires=300" in location
    download = requests.get(location, timeout=30)  # as a phone would: no token, straight to the store
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    assert "attachment" in download.headers["Content-Disposition"]
    with db.session_scope() as session:
        row = session.scalars(select(Artifact).where(Artifact.job_id == uuid.UUID(job["id"]))).one()
        assert hashlib.sha256(download.content).hexdigest() == row.sha256
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("manifest.json"))
    assert manifest["user_id"] == str(user.id)

    # HTML from the store is a download: a presigned GET can carry no CSP and no nosniff, and
    # shown inline it would run on the store's origin.
    from shared import artifacts
    from shared.models import Job
    from shared.storage import artifact_storage
    with db.session_scope() as session:
        artifacts.store(session=session, settings=get_settings(), job=session.get(Job, uuid.UUID(job["id"])),
                        name="report.html", data=b"<script>alert(1)</script>", content_type="text/html; charset=utf-8")
    html = client.get(f"/v1/jobs/{job['id']}/artifact?name=report.html", headers=headers)
    page = requests.get(html.headers["Location"], timeout=30)
    assert page.status_code == 200 and page.headers["Content-Disposition"].startswith("attachment"), page.headers
    with db.session_scope() as session:  # gone again, so that the retention below sees only the export
        report = session.scalars(select(Artifact).where(Artifact.name == "report.html")).one()
        artifact_storage(get_settings()).delete([report.path])
        session.delete(report)

    # The signed link (no token needed) redirects the same way; a bad one is still a 404.
    signed = client.get(job["result"]["artifact_url"])
    assert signed.status_code == 302 and requests.get(signed.headers["Location"], timeout=30).content == download.content
    assert client.get(job["result"]["artifact_url"][:-3] + "xyz").status_code == 404

    # Retention deletes the object; then the row's download is a 404, not the store's XML.
    with db.session_scope() as session:
        session.get(Artifact, row.id).expires_at = utcnow() - timedelta(seconds=1)
    from workers.maintenance import purge_expired

    with db.session_scope() as session:
        assert purge_expired(session=session, settings=get_settings(), now=utcnow())["artifact_files"] == 1
    assert keys(s3, "artifacts/") == []


def test_an_erased_account_leaves_nothing_in_the_bucket(stack, s3, user, headers, other_user):
    from api import create_app
    from shared.settings import get_settings

    client = create_app(get_settings()).test_client()
    exported = client.post("/v1/jobs", headers=headers, json={"type": "account.export", "params": {}})
    assert wait_for_job(client, exported.json["id"], headers, timeout=90)["status"] == "succeeded"
    s3.client().put_object(Bucket=BUCKET, Key=f"{PREFIX}/artifacts/{other_user.id}/x/kept.json", Body=b"{}")
    assert len(keys(s3, f"artifacts/{user.id}/")) == 1

    client.post("/v1/jobs", headers=headers, json={"type": "account.delete", "params": {}})

    wait_until(lambda: not keys(s3, f"artifacts/{user.id}/"), timeout=60, message="the user's objects to go")
    assert keys(s3, f"artifacts/{other_user.id}/") == [f"{PREFIX}/artifacts/{other_user.id}/x/kept.json"]
    # The erasure is journaled beside the backups, by its keyed id alone (restores apply it again).
    [entry] = keys(s3, "erasure-journal/")
    assert str(user.id) not in entry and user.email not in s3.client().get_object(
        Bucket=BUCKET, Key=entry)["Body"].read().decode()


def test_backup_create_verify_restore_and_retention_work_from_the_bucket(stack, s3, user, local_dirs, monkeypatch,
                                                                         fresh_database):
    from tests.factories import make_task

    for i in range(5):
        make_task(user, title=f"task {i}")

    first = assistant("backup", "create")
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)["backup"]
    # The file, and its record beside it (what a restore reads when the database is lost).
    assert keys(s3, "backups/") == [f"{PREFIX}/backups/{made['filename']}", f"{PREFIX}/backups/{made['filename']}.json"]
    assert not list(local_dirs.rglob("*.dump"))

    verified = assistant("backup", "verify")
    assert verified.returncode == 0, verified.stderr
    assert f"{made['filename']}: ok" in verified.stdout

    restored = assistant("backup", "restore", made["id"], "--target-url",
                         fresh_database.render_as_string(hide_password=False))
    assert restored.returncode == 0, restored.stderr
    engine = create_engine(fresh_database, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            assert backups.fingerprints(connection)["tasks"]["rows"] == 5
    finally:
        engine.dispose()

    # The same day's second backup does not replace the first: a backup taken by hand is kept
    # BACKUP_KEEP_MANUAL_DAYS, and the newest verified one always.
    second = assistant("backup", "create")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["pruned"] == []
    assert len(keys(s3, "backups/")) == 4
    assert assistant("backup", "verify").returncode == 0  # the second is now the newest verified
    # Past the hand-made window, the next backup's retention deletes the first from the bucket.
    monkeypatch.setenv("BACKUP_KEEP_MANUAL_DAYS", "0")
    third = assistant("backup", "create")
    assert third.returncode == 0, third.stderr
    output = json.loads(third.stdout)
    assert output["pruned"] == [made["filename"]]
    kept = sorted([json.loads(second.stdout)["backup"]["filename"], output["backup"]["filename"]])
    assert keys(s3, "backups/") == [f"{PREFIX}/backups/{name}{end}" for name in kept for end in ("", ".json")]

    # A corrupted object fails verification, read from the bucket.
    s3.client().put_object(Bucket=BUCKET, Key=f"{PREFIX}/backups/{output['backup']['filename']}", Body=b"garbage")
    broken = assistant("backup", "verify")
    assert broken.returncode == 1 and "corrupted" in broken.stderr
    with db.session_scope() as session:
        assert session.scalars(select(Backup).where(Backup.id == output["backup"]["id"])).one().verify_status == "failed"
