"""Periodic tasks run by workers on beat's signal."""
from __future__ import annotations

import logging

from shared.celery_app import app
from shared.db import session_scope
from shared.jobs import sweep
from shared.settings import get_settings

log = logging.getLogger(__name__)


@app.task(name="scheduler.sweep", acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=180)
def sweep_task() -> dict:
    """Deliver jobs whose message was lost and recover jobs whose worker died.

    Two beats (or a slow sweep overlapping the next) are harmless: each job is taken by
    a compare-and-set on its run_token, so exactly one sweep acts on it.
    """
    with session_scope() as session:
        report = sweep(session=session, settings=get_settings())
    if any(report.as_dict().values()):
        log.warning("sweep: %s", report.as_dict())
    return report.as_dict()
