"""Once a day, the audit log's head hash goes into the logs: a copy outside the database.

A superuser who rewrote the log and its chain from some row on (with the key) or emptied it
still cannot change what the log collector already holds: compare it with `assistant audit verify`.
"""
from __future__ import annotations

import logging

from shared import audit
from shared.celery_app import app
from shared.db import session_scope

log = logging.getLogger(__name__)


@app.task(name="scheduler.audit_head", acks_late=True, ignore_result=True, soft_time_limit=30, time_limit=45)
def audit_head_task() -> dict:
    """Log the audit log's newest seq and hash."""
    with session_scope() as session:
        seq, row_hash = audit.head(session)
    log.info("audit log head: seq=%s hash=%s", seq, row_hash, extra={"audit_head_seq": seq, "audit_head_hash": row_hash})
    return {"seq": seq, "hash": row_hash}
