"""Many submissions in one transaction, sent together: how an app flushes its offline queue.

Each item is checked and admitted as a single submit would be (its type, its params, its
own Idempotency-Key, the user's cap on active jobs, counting the items before it), so one
bad item costs only its own place in the answer. The accepted ones commit together and
then go to the broker in one pipelined round trip (shared.jobs.send).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from shared.errors import JobError
from shared.jobs.send import dispatch_many
from shared.jobs.submit import Submitted, submit_job
from shared.models import Principal, User
from shared.settings import Settings

MAX_BATCH = 100


@dataclass
class BatchItem:
    type: object
    params: object = None
    idempotency_key: str | None = None


def submit_batch(*, session: Session, user: User | Principal, items: list[BatchItem], settings: Settings
                 ) -> list[Submitted | JobError]:
    """Insert each item as submit_job would (not yet committed, not yet sent: see dispatch_batch)."""
    outcomes: list[Submitted | JobError] = []
    for item in items:
        try:
            outcomes.append(submit_job(
                session=session, user=user, type_name=item.type, params=item.params, settings=settings,
                idempotency_key=item.idempotency_key,
            ))
        except JobError as refused:
            # Refusals raise before anything is written, so the transaction goes on for the rest.
            outcomes.append(refused)
    return outcomes


def dispatch_batch(session: Session, outcomes: list[Submitted | JobError]) -> int:
    """Send every new job of the batch in one round trip once the session commits; return how many."""
    return dispatch_many(session, [o for o in outcomes if isinstance(o, Submitted)])
