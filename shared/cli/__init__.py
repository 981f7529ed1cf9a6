"""The `assistant` command for operators: migrations, admins, jobs, backups, keys, and running it all.

One module per command group; each imports only `shared`.
"""
from __future__ import annotations

import click

from shared.cli import audit, backup, db, jobs, keys, processes, smoke, status, users


@click.group()
def main() -> None:
    """Personal Assistant platform: operator commands."""


for _command in (db.db, users.users, jobs.jobs, backup.backup, keys.keys, audit.audit, processes.embedded_redis,
                 processes.flower, processes.run, smoke.smoke, status.status):
    main.add_command(_command)


if __name__ == "__main__":
    main()
