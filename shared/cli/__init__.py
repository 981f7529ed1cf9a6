"""The `assistant` command for operators: migrations, admins, jobs, backups, keys, and running it all.

One module per command group; each imports only `shared`. Every command reads the settings
as the processes do (the environment, then `.env`) and refuses on the same problems; errors
are one line with an exit code (shared.cli.errors).
"""
from __future__ import annotations

import click

from shared.cli import audit, backup, db, jobs, keys, processes, settings, smoke, status, users
from shared.cli.errors import translated

# Commands that must run whatever the settings say: they are how an operator finds out.
UNCHECKED = {"settings", None}


class AssistantGroup(click.Group):
    """A click group whose known failures are one line with an exit code, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.ClickException:
            raise
        except Exception as exc:
            error = translated(exc)
            if error is None:
                raise
            raise error from None


@click.group(cls=AssistantGroup)
@click.pass_context
def main(ctx: click.Context) -> None:
    """Personal Assistant platform: operator commands."""
    from shared.settings import check_settings

    if ctx.invoked_subcommand not in UNCHECKED and not ctx.resilient_parsing:
        # Flower's own rule (basic auth in production) applies to `assistant flower`.
        # The processes `run` starts warn about an unset APP_ENV themselves; a command does not.
        if ctx.invoked_subcommand == "flower":
            check_settings("flower")
        else:
            check_settings(f"assistant {ctx.invoked_subcommand}", warn=False)


for _command in (db.db, users.users, jobs.jobs, backup.backup, keys.keys, audit.audit, processes.embedded_redis,
                 processes.flower, processes.run, settings.settings, smoke.smoke, status.status):
    main.add_command(_command)


if __name__ == "__main__":
    main()
