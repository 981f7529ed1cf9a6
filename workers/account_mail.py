"""Account mail tasks: the reset link (the worker looks the address up, so the api's answer and
work are the same whether or not it has an account) and the "password changed" notice."""
from __future__ import annotations

import logging
import smtplib
import uuid

from shared import account_mail
from shared.accounts import issue_reset
from shared.celery_app import app
from shared.db import session_scope
from shared.models import User
from shared.settings import get_settings

log = logging.getLogger(__name__)

RESET_TASK = "account.password_reset_mail"
CHANGED_TASK = "account.password_changed_mail"
# A refused or unreachable SMTP server is retried a few times, then given up: the person asks again.
_RETRY = dict(autoretry_for=(OSError, smtplib.SMTPException), retry_backoff=5, retry_jitter=True, max_retries=4,
              acks_late=True, ignore_result=True, soft_time_limit=60, time_limit=90)


@app.task(name=RESET_TASK, **_RETRY)
def password_reset_mail(email: str) -> None:
    """Mail a reset link to the account of `email`, if there is one."""
    settings = get_settings()
    with session_scope() as session:
        issued = issue_reset(session=session, email=email, settings=settings)
        if issued is None:
            return
        user_id, address, link = issued[0].id, issued[0].email, issued[1]
    if not settings.smtp_url:
        # Development without mail: the link goes to the log (never set in production: see SMTP_URL).
        log.warning("SMTP_URL is not set; password reset link for user %s: %s", user_id, link)
        return
    account_mail.send(account_mail.reset_message(to=address, link=link, settings=settings), settings)
    log.info("password reset link mailed to user %s", user_id)


@app.task(name=CHANGED_TASK, **_RETRY)
def password_changed_mail(user_id: str) -> None:
    """Tell the account's owner that its password was changed."""
    settings = get_settings()
    if not settings.smtp_url:
        return
    with session_scope() as session:
        user = session.get(User, uuid.UUID(user_id))
        email = user.email if user else None
    if email:
        account_mail.send(account_mail.changed_message(to=email, settings=settings), settings)
