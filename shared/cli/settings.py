"""The settings table, shown: `assistant settings show|example|table`."""
from __future__ import annotations

import textwrap

import click

from shared.cli.errors import Misconfigured
from shared.settings import (
    DEV_ERASURE_JOURNAL_KEY,
    DEV_SECRET_KEY,
    Settings,
    configuration_problems,
    get_settings,
    given_values,
    meta,
    variable,
    variables,
)

# Read from the environment by libraries, not by the table (shared.settings.LIBRARY_VARIABLES):
# listed in .env.example all the same.
LIBRARY_HELP = (
    ("AWS_ACCESS_KEY_ID", "Credentials of the object store, read by boto3 (which also finds instance and pod roles "
     "when these are unset). Keep them in .env or a Secret, never in a committed file."),
    ("AWS_SECRET_ACCESS_KEY", "(its secret)"),
    ("PROMETHEUS_MULTIPROC_DIR", "Directory where a process family (gunicorn's workers, a Celery worker's pool) "
     "keeps its metrics for /metrics; emptied at start. Unset: a fresh temporary directory."),
)
HEADER = """\
# Personal Assistant: every environment variable, with its default.
#
# Generated from the settings table in shared/settings.py (`assistant settings example`).
# Copy to `.env` to change any of them: every `assistant` command, gunicorn, the worker and
# beat read the environment and then `.env` in the current directory (the environment wins),
# and docker-compose reads it to fill in the `${...}` in docker-compose.yml. A line left as
# it is here changes nothing: its value is the default. Lines kept commented out are those
# where "unset" means something an empty value would not."""


def written(value) -> str:
    """A default as .env would say it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def env_example() -> str:
    """.env.example, from the table."""
    lines = [HEADER.rstrip("\n")]
    for name, field in Settings.model_fields.items():
        about = meta(name)
        if about.section:
            lines += ["", f"# --- {about.section} " + "-" * max(3, 84 - len(about.section)), ""]
        else:
            lines.append("")
        lines += textwrap.wrap(about.help, 90, initial_indent="# ", subsequent_indent="# ")
        if about.example is not None:
            lines.append(f"# {variable(name)}={about.example}")
        else:
            lines.append(f"{variable(name)}={written(field.default)}")
    lines += ["", "# --- Read by libraries " + "-" * 62]
    for name, help in LIBRARY_HELP:
        lines += [""] + textwrap.wrap(help, 90, initial_indent="# ", subsequent_indent="# ") + [f"# {name}="]
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The settings table of docs/settings.md, from the table."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = written(field.default) if meta(name).example is None else "unset"
        help = meta(name).help.replace("|", "\\|")
        rows.append(f"| `{variable(name)}` | {f'`{default}`' if default else 'empty'} | {help} |")
    return "\n".join(rows) + "\n"


def redacted(name: str, value) -> str:
    text = written(value)
    if not meta(name).secret or not text:
        return text
    if "://" in text:
        from shared.cli.errors import shown_url

        return ",".join(shown_url(part) for part in text.split(","))
    if text in (DEV_SECRET_KEY, DEV_ERASURE_JOURNAL_KEY):
        return "****** (the development default)"
    return "******"


@click.group()
def settings() -> None:
    """The settings: every value and where it came from."""


@settings.command("show")
def settings_show() -> None:
    """Each setting, its value (secrets redacted) and its source: env, .env or default."""
    current = get_settings()
    given = given_values()
    by_field: dict[str, str] = {}
    for name, field in variables().items():
        if name in given:
            by_field.setdefault(field, given[name][1])
    width = max(len(variable(name)) for name in Settings.model_fields)
    for name in Settings.model_fields:
        click.echo(f"{variable(name):<{width}}  {by_field.get(name, 'default'):<7}  "
                   f"{redacted(name, getattr(current, name))}")
    problems = configuration_problems(current)
    if problems:
        raise Misconfigured("; ".join(problems))


@settings.command("example")
def settings_example() -> None:
    """Print .env.example, made from the table (`assistant settings example > .env.example`)."""
    click.echo(env_example(), nl=False)


@settings.command("table")
def settings_table() -> None:
    """Print the table of docs/settings.md (markdown), made from the table."""
    click.echo(markdown_table(), nl=False)
