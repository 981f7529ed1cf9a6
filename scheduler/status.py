"""Every few minutes, each component's state into today's worst: the status page's 90-day history."""
from __future__ import annotations

from shared import status
from shared.celery_app import app
from shared.db import new_session, session_scope
from shared.redis_clients import cache_redis
from shared.settings import get_settings

SAMPLE_SECONDS = 300


@app.task(name="scheduler.status_sample", acks_late=True, ignore_result=True, soft_time_limit=30, time_limit=45)
def status_sample_task() -> dict:
    """Compute the status page now and keep each component's worst state of the day."""
    page = status.compute(settings=get_settings(), session_factory=new_session, redis_client=cache_redis(),
                          broker_ok=status.broker_answers)
    with session_scope() as session:
        status.sample(session, page)
    return {c["name"]: c["status"] for c in page["components"]}
