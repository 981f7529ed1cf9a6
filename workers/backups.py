"""Backup jobs: make one (with retention) and prove one restores to what was recorded."""
from __future__ import annotations

import logging
import uuid

from shared import backups
from shared.db import get_engine
from shared.job_runner import JobContext, JobFailed, job_task
from shared.models import Backup, utcnow
from shared.settings import get_settings

log = logging.getLogger(__name__)


@job_task("ops.backup")
def backup(ctx: JobContext) -> dict:
    """Dump the database into BACKUP_DIR, then drop backups the retention policy no longer keeps."""
    settings = get_settings()
    try:
        made = backups.create_backup(session=ctx.session, engine=get_engine(), settings=settings)
    except backups.BackupError as exc:
        raise JobFailed("backup_failed", str(exc))
    pruned = backups.prune(session=ctx.session, settings=settings)
    return {"backup": backups.backup_to_dict(made), "pruned": pruned}


@job_task("ops.verify_backup")
def verify(ctx: JobContext) -> dict:
    """Restore a backup into a scratch database and compare; a mismatch fails the job loudly."""
    settings = get_settings()
    session = ctx.session
    if ctx.params.get("backup_id"):
        target = session.get(Backup, uuid.UUID(ctx.params["backup_id"]))
    else:
        target = backups.newest(session)
    if target is None:
        raise JobFailed("no_backup", "There is no backup to verify.")
    try:
        outcome = backups.verify_backup(engine=get_engine(), settings=settings, backup=target)
    except backups.BackupError as exc:
        log.error("BACKUP VERIFICATION FAILED for %s: %s", target.filename, exc)
        target.verified_at, target.verify_status, target.verify_message = utcnow(), "failed", str(exc)[:4000]
        session.commit()  # the failure is recorded on the backup even though the job fails
        raise JobFailed(exc.code, str(exc))  # backup_verification_failed, backup_keys_mismatch
    target.verified_at, target.verify_status, target.verify_message = utcnow(), "ok", None
    return {"backup": backups.backup_to_dict(target), "tables": outcome.tables, "rows": outcome.rows}
