"""The audit log: `assistant audit verify` (its hash chain) and `assistant audit head`."""
from __future__ import annotations

import click

from shared.db import session_scope
from shared.settings import get_settings


@click.group()
def audit() -> None:
    """The audit log of data access."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exits 1 at the first row that does not match."""
    from shared.audit import ChainBroken, verify

    with session_scope() as session:
        try:
            result = verify(session, settings=get_settings())
        except ChainBroken as exc:
            raise click.ClickException(f"AUDIT CHAIN BROKEN: {exc}")
    click.echo(f"audit log ok: {result.rows} records, head seq={result.head_seq} hash={result.head_hash}")


@audit.command("head")
def audit_head() -> None:
    """The newest record's seq and hash (compare with the one beat logs daily)."""
    from shared.audit import head

    with session_scope() as session:
        seq, row_hash = head(session)
    click.echo(f"seq={seq} hash={row_hash}")
