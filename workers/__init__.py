"""Celery tasks, one module per domain. Importing the package registers them all."""
from workers import ops, sync, todos  # noqa: F401
