"""Celery tasks, one module per domain. Importing the package registers them all."""
from workers import account, account_mail, agents, backups, maintenance, notify, ops, reports, sync, todos, webhooks  # noqa: F401
