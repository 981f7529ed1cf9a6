"""Celery tasks, one module per domain. Importing the package registers them all."""
from workers import agents, ops, todos  # noqa: F401
