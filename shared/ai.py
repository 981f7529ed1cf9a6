"""What the api and the workers share about AI agents: the daily token budget and usage.

The api checks the budget when an agent job is submitted (the agent types name
`check_budget` as their admission check in shared.jobtypes); the workers record each
call's tokens as soon as the provider answers.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.errors import BudgetExceeded
from shared.models import AiUsage, User, utcnow
from shared.settings import Settings


def start_of_local_day(user: User, now: datetime | None = None) -> datetime:
    """Midnight of the user's current day, in their timezone: the budget resets there."""
    zone = ZoneInfo(user.timezone or "UTC")
    local = (now or utcnow()).astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


def tokens_used_today(session: Session, user: User, now: datetime | None = None) -> int:
    """Prompt plus completion tokens the user spent since their local midnight."""
    total = session.scalar(
        select(func.coalesce(func.sum(AiUsage.prompt_tokens + AiUsage.completion_tokens), 0)).where(
            AiUsage.user_id == user.id, AiUsage.created_at >= start_of_local_day(user, now)
        )
    )
    return int(total or 0)


def check_budget(*, session: Session, user: User, settings: Settings) -> None:
    """Refuse a new agent job once the user's daily tokens are spent (one indexed SUM)."""
    budget = settings.ai_daily_token_budget
    if budget <= 0:
        return
    used = tokens_used_today(session, user)
    if used >= budget:
        reset = start_of_local_day(user) + timedelta(days=1)
        refusal = BudgetExceeded(
            "ai_budget_exceeded",
            f"You used {used} of your {budget} AI tokens today; the budget resets at "
            f"{reset.isoformat()}.",
        )
        refusal.retry_after = max(1, int((reset - utcnow()).total_seconds()) + 1)
        raise refusal


def estimated_cost(prompt_tokens: int, completion_tokens: int, settings: Settings) -> float:
    """USD, from the configured per-million-token prices."""
    cost = (prompt_tokens * settings.ai_price_prompt_per_mtok
            + completion_tokens * settings.ai_price_completion_per_mtok) / 1_000_000
    return round(cost, 6)

