"""Sending many job messages to the broker in one round trip.

kombu's Producer.batch buffers each publish's LPUSH in a non-transactional Redis pipeline
and sends them together when the block ends; Celery routes a queue of a direct exchange to
the anonymous exchange, so no publish waits on a binding lookup either. The messages are
exactly what `send_task` makes one at a time: a worker, Flower's broker page and the
sweeper see no difference.
"""
from __future__ import annotations

import logging

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.jobs import fair_priority
from shared.jobtypes import REGISTRY
from shared.models import Job

log = logging.getLogger(__name__)


def send_many(session: Session, jobs: list[tuple]) -> int:
    """Send (job_id, run_token, type_name, priority) messages after the commit that saved them.

    Same contract as shared.jobs.send_job: when the broker refuses, every job of the call
    gets `enqueued_at` cleared and the sweeper sends it on its next round (a message that
    did leave meanwhile runs once: the sweeper's resend carries a new run_token, and the
    claim lets only one of the two through).
    """
    if not jobs:
        return 0
    from shared.celery_app import app  # the Celery app imports this module's neighbours

    try:
        with app.producer_or_acquire() as producer, producer.batch(max_size=len(jobs) + 1):
            for job_id, run_token, type_name, priority in jobs:
                job_type = REGISTRY[type_name]
                app.send_task(
                    job_type.task_name, args=[str(job_id)], task_id=run_token, queue=job_type.queue,
                    priority=fair_priority(queue=job_type.queue, active=0) if priority is None else priority,
                    producer=producer,
                )
        return len(jobs)
    except Exception as exc:  # kombu raises several types for an unreachable broker
        log.warning("%d jobs not sent, the sweeper will retry: %s", len(jobs), exc)
        session.rollback()
        for job_id, run_token, _type, _priority in jobs:
            session.execute(update(Job).where(Job.id == job_id, Job.run_token == run_token).values(enqueued_at=None))
        session.commit()
        return 0
