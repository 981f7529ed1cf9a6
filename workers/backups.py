"""Backup jobs: make one (with retention) and prove one restores to what was recorded."""
from __future__ import annotations

import logging
import uuid

from shared import backups
from shared.db import get_engine
from shared.models import SYSTEM_ROLE
from shared.settings import get_settings
from workers.job_runner import JobContext, JobFailed, job_task

log = logging.getLogger(__name__)


@job_task("ops.backup")
def backup(ctx: JobContext) -> dict:
    """Dump the database into BACKUP_DIR, then drop backups the retention policy no longer keeps."""
    # Beat submits it as the system account; anyone else (an admin's "Back up now") took it by hand.
    manual = ctx.user.role != SYSTEM_ROLE
    try:
        return backups.back_up_now(session=ctx.session, engine=get_engine(), settings=get_settings(), manual=manual)
    except backups.BackupError as exc:
        raise JobFailed("backup_failed", str(exc))


@job_task("ops.verify_backup")
def verify(ctx: JobContext) -> dict:
    """Restore a backup into a scratch database and compare; a mismatch fails the job loudly."""
    backup_id = ctx.params.get("backup_id")
    try:
        target, outcome = backups.verify_and_record(session=ctx.session, engine=get_engine(), settings=get_settings(),
                                                    backup_id=uuid.UUID(backup_id) if backup_id else None)
    except backups.NoBackup as exc:
        raise JobFailed("no_backup", str(exc))
    except backups.BackupError as exc:
        log.error("BACKUP VERIFICATION FAILED: %s", exc)  # the CLI prints it; a job has only its log
        raise JobFailed(exc.code, str(exc))  # backup_verification_failed, backup_keys_mismatch
    return {"backup": backups.backup_to_dict(target), "tables": outcome.tables, "rows": outcome.rows}
