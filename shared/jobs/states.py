"""A job's states and how the api shows one: the bottom of the job modules, imported by the
lifecycle (shared.jobs) and the status cache alike."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from shared.models import Job

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELED = "queued", "running", "succeeded", "failed", "canceled"
ACTIVE = (QUEUED, RUNNING)
TERMINAL = (SUCCEEDED, FAILED, CANCELED)
STATUSES = ACTIVE + TERMINAL


def job_to_dict(job: Job) -> dict:
    """The job as the api shows it; Celery's own ids and states never appear here."""
    return {
        "id": str(job.id),
        "type": job.type,
        "status": job.status,
        "params": job.params,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "result": job.result,
        "error": {"code": job.error_code, "message": job.error_message} if job.error_code else None,
        "attempts": job.attempts,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "expires_at": _iso(job.expires_at),
    }


def job_etag(job_dict: dict) -> str:
    body = json.dumps(job_dict, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
