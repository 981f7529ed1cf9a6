"""The user's own account: export everything (portability) and erase everything (erasure)."""
from __future__ import annotations

import base64
import json
import logging
import tempfile
import uuid
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import artifacts, audit, erasures, privacy, replicas, revocation
from shared.models import AuditEvent, User, utcnow
from shared.settings import Settings, get_settings
from workers.job_runner import JobContext, RetryableJobError, job_task

log = logging.getLogger(__name__)

def revoke_google(session: Session, user: User, settings: Settings) -> None:
    """Revoke the user's Google grant, if one is connected (our copy of the tokens goes with the user).

    Run before the user's rows go, and again if the job runs again after a worker died:
    dropping what is already dropped is harmless.

    Best effort: a Google that does not answer must not keep an erasure from happening;
    the grant then lapses at Google when its tokens stop being refreshed.
    """
    from shared import crypto, metrics
    from shared import google_oauth as google
    from shared.models import GoogleIntegration, GooglePendingLink

    for link in session.scalars(select(GooglePendingLink).where(GooglePendingLink.user_id == user.id)):
        google.drop_link(settings=settings, link=link)  # a consent the user's app never completed
    integration = session.scalar(select(GoogleIntegration).where(GoogleIntegration.user_id == user.id))
    if integration is None:
        return
    try:
        token = crypto.decrypt(integration.refresh_token_encrypted, settings)
    except (crypto.DecryptionFailed, crypto.EncryptionNotConfigured):
        log.warning("account.delete: the Google token could not be decrypted; not revoked at Google")
        return
    revoked = google.revoke(settings=settings, token=token)
    metrics.GOOGLE_API_CALLS.labels("oauth_revoke", "ok" if revoked else "error").inc()
    if not revoked:
        log.warning("account.delete: Google did not confirm the revocation")


def _json_value(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot export a {type(value).__name__}")


def write_export(*, session: Session, user: User, path: Path) -> dict:
    """Write the user's zip to `path`: one JSON file per table, and manifest.json; returns the manifest."""
    manifest = {"user_id": str(user.id), "exported_at": utcnow().isoformat(), "tables": {}}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for table, columns in privacy.user_tables():
            rows = list(privacy.iter_rows(session, table, columns, user.id))
            archive.writestr(f"{table.name}.json", json.dumps(rows, default=_json_value, indent=1))
            manifest["tables"][table.name] = {"rows": len(rows), "withheld_columns": privacy.withheld_columns(table)}
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    return manifest


@job_task("account.export")
def export_account(ctx: JobContext) -> dict:
    """Everything we hold about the user, as a zip artifact."""
    settings = get_settings()
    staging = artifacts.artifact_storage(settings).staging_dir()
    with tempfile.NamedTemporaryFile(dir=staging, prefix=".export-", suffix=".zip", delete=False) as tmp:
        path = Path(tmp.name)
    try:
        with replicas.reading(primary=ctx.session, user_id=ctx.user.id) as read:  # the user's rows, from a replica when one is current
            manifest = write_export(session=read, user=ctx.user, path=path)
        artifact = artifacts.store(session=ctx.session, settings=settings, job=ctx.job, name="export.zip",
                                   content_type="application/zip", source=path)
    finally:
        path.unlink(missing_ok=True)
    link = artifacts.link(settings, artifact)
    audit.record(ctx.session, actor=ctx.user, action="account.export", resource=("artifact", artifact.id),
                 subjects=[ctx.user.id], details={"tables": len(manifest["tables"])}, settings=settings)
    return {"tables": manifest["tables"], "artifact_url": link["artifact_url"], "artifacts": [link]}


@job_task("account.delete")
def delete_account(ctx: JobContext) -> dict:
    """Revoke outside access, erase the user and all their rows, and keep an audit record without personal data."""
    settings = get_settings()
    user, session = ctx.user, ctx.session
    revoke_google(session, user, settings)  # what the user holds outside our database
    counts = privacy.row_counts(session, user.id)
    # Journaled before the rows go: a journal that cannot be written fails this attempt and
    # the job runs again, so no erasure is ever missing from it (a restore re-applies them).
    try:
        erasure_id = erasures.record(settings=settings, user_id=user.id)
    except erasures.JournalUnavailable as exc:
        raise RetryableJobError("erasure_journal_unavailable", str(exc))
    session.add(AuditEvent(event=erasures.ERASED, subject_hash=privacy.subject_hash(settings.secret_key, user.id),
                           details={"rows": counts, "erasure_id": erasure_id}, created_at=utcnow()))
    audit.record(session, actor=user, action="account.erase", resource="account", subjects=[user.id],
                 details={"rows": sum(counts.values())}, settings=settings)
    audit.forget(session, user.id)  # the clear ids go; the keyed hashes and the chain stay
    session.delete(user)  # every table that refers to users cascades (ON DELETE CASCADE)
    # Committed here, not with the job's success: this job's own row goes with the user,
    # so there is no row left to mark succeeded (the runner then finds it gone and stops).
    session.commit()
    revocation.publish_version(user.id, revocation.DELETED, settings)  # its access tokens stop at once
    artifacts.remove_user_files(settings, user.id)
    log.info("account erased: %s rows", sum(counts.values()))
    return {"deleted": True, "rows": counts}
