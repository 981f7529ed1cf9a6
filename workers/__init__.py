"""Celery tasks, one module per domain. Importing the package registers them all."""
from workers import account, account_mail, agents, backups, maintenance, ops, push, reports, sync, todos, webhooks  # noqa: F401
