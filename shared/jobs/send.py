"""Handing jobs to the broker once the transaction that saved them commits.

Every send registers with the session (shared.jobs.outbox) and leaves after the commit; a
rollback drops it, so a message whose row did not commit never exists. A job's row says
when its message is due (`enqueued_at`, set in the same transaction); if the broker refuses,
`enqueued_at` is cleared in a short transaction of its own and the sweeper sends the job on
its next round; if the process dies between the commit and the send, the sweeper finds the
job once it has waited STUCK_QUEUED_SECONDS.

Many messages go in one round trip: kombu's Producer.batch buffers each publish's LPUSH in
a non-transactional Redis pipeline and sends them together when the block ends; Celery
routes a queue of a direct exchange to the anonymous exchange, so no publish waits on a
binding lookup either. The messages are exactly what `send_task` makes one at a time: a
worker, Flower's broker page and the sweeper see no difference.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared import metrics
from shared.jobs import outbox
from shared.jobs.registry import REGISTRY
from shared.jobs.submit import fair_priority
from shared.models import Job

log = logging.getLogger(__name__)


@dataclass
class Message:
    job_id: object
    run_token: str
    type_name: str
    priority: int | None = None
    countdown: float | None = None


class Sending(outbox.Entry):
    """Messages that leave together after the commit; `sent` says whether they did."""

    def __init__(self, session: Session, messages: list[Message]):
        self.bind = session.get_bind()
        self.messages = messages
        self.sent: bool | None = None  # None: not yet (the transaction is still open)

    def after_commit(self) -> None:
        from shared.celery_app import app  # it routes by the catalogue, which imports this package's registry

        try:
            with app.producer_or_acquire() as producer, producer.batch(max_size=len(self.messages) + 1):
                for message in self.messages:
                    job_type = REGISTRY[message.type_name]
                    app.send_task(
                        job_type.task_name, args=[str(message.job_id)], task_id=message.run_token,
                        queue=job_type.queue, countdown=message.countdown,
                        priority=(fair_priority(queue=job_type.queue, active=0) if message.priority is None
                                  else message.priority),
                        producer=producer,
                    )
            self.sent = True
        except Exception as exc:  # kombu raises several types for an unreachable broker
            log.warning("%d jobs not sent, the sweeper will retry: %s", len(self.messages), exc)
            self.sent = False
            self._leave_to_sweeper()

    def _leave_to_sweeper(self) -> None:
        # Its own short transaction: the caller's has committed, and its session is not ours to use.
        # (A message that did leave meanwhile runs once: the sweeper's resend carries a new
        # run_token, and the claim lets only one of the two through.)
        try:
            with Session(self.bind) as session:
                for message in self.messages:
                    session.execute(update(Job).where(Job.id == message.job_id, Job.run_token == message.run_token)
                                    .values(enqueued_at=None))
                session.commit()
        except Exception as exc:
            log.warning("jobs left unmarked; the sweeper finds them after STUCK_QUEUED_SECONDS: %s", exc)


def send_job(session: Session, job_id, run_token: str, *, type_name: str | None = None,
             countdown: float | None = None, priority: int | None = None) -> Sending:
    """Send the job's message once the session commits the change that gave it `run_token`
    and set its `enqueued_at` (the insert, a retry, a resend)."""
    type_name = type_name or session.get(Job, job_id).type
    sending = Sending(session, [Message(job_id, run_token, type_name, priority, countdown)])
    outbox.register(session, sending)
    return sending


def dispatch(session: Session, submitted, *, countdown: float | None = None) -> None:
    """Send a new submission with its fair priority once the session commits, and count it.

    `submitted` is a Submitted, or shaped like one (`job`, `created`, `priority`), such as a
    schedule's RunOutcome. A replayed or coalesced submission (created False) sends nothing.
    """
    if submitted.created:
        dispatch_many(session, [submitted], countdown=countdown)


def dispatch_many(session: Session, submissions: list, *, countdown: float | None = None) -> int:
    """Send every new job of these submissions in one round trip after the commit; return how many."""
    new = [s for s in submissions if getattr(s, "created", False)]
    if not new:
        return 0
    outbox.register(session, Sending(session, [
        Message(s.job.id, s.job.run_token, s.job.type, s.priority, countdown) for s in new
    ]))
    outbox.after_commit(session, lambda: [metrics.JOBS_SUBMITTED.labels(s.job.type).inc() for s in new])
    return len(new)


def revoke(session: Session, run_token: str) -> None:
    """Once the session commits (the row says canceled), ask the worker running this message to stop it now."""

    def send() -> None:
        from shared.celery_app import app

        try:
            app.control.revoke(run_token, terminate=True, signal="SIGTERM")
        except Exception as exc:  # best effort: the claim and progress() see the canceled row anyway
            log.warning("revoke of %s not sent: %s", run_token, exc)

    outbox.after_commit(session, send)
