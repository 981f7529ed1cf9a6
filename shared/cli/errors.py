"""One-line errors with exit codes that mean something (sysexits): what the `assistant` group raises.

69 a database or broker that does not answer (its URL named, without the password), 78 the
configuration, 1 a refusal ("the job already finished"), 2 usage (click's own).
"""
from __future__ import annotations

import click

EX_UNAVAILABLE, EX_CONFIG = 69, 78


class Refused(click.ClickException):
    exit_code = 1


class Unreachable(click.ClickException):
    exit_code = EX_UNAVAILABLE


class Misconfigured(click.ClickException):
    exit_code = EX_CONFIG


def translated(exc: Exception) -> click.ClickException | None:
    """The one-line error for `exc`, or None for a bug (which keeps its traceback)."""
    import redis
    from kombu.exceptions import OperationalError as BrokerError
    from sqlalchemy.exc import DBAPIError

    from shared.errors import JobError
    from shared.settings import ConfigurationError, get_settings

    if isinstance(exc, ConfigurationError):
        # A command that starts processes says so, as the processes themselves do.
        starts = f"{exc.process} refuses to start: " if exc.process in ("assistant run", "flower") else ""
        return Misconfigured(starts + "; ".join(exc.problems))
    if isinstance(exc, JobError):
        return Refused(exc.message)
    if isinstance(exc, DBAPIError):
        url = shown_url(get_settings().database_url)
        first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
        if any(s in first for s in ("no such table", "does not exist")) and "database" not in first:
            return Misconfigured(f"the database at {url} has no tables yet ({first}): run `assistant db upgrade`")
        if exc.connection_invalidated or type(exc).__name__ in ("OperationalError", "InterfaceError"):
            return Unreachable(f"the database at {url} is unreachable: {first}")
        return None
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, BrokerError)):
        return Unreachable(f"Redis at {shown_url(get_settings().broker_url)} is unreachable: {exc}")
    return None


def shown_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        # postgresql, not postgresql+psycopg2: the URL as the operator wrote it.
        return parsed.set(drivername=parsed.get_backend_name()).render_as_string(hide_password=True)
    except Exception:  # a Redis URL, say: sqlalchemy cannot parse every scheme
        from shared.settings import _shown

        return _shown(url)
