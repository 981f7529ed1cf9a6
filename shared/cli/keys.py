"""Encryption keys of the secrets at rest: `assistant keys rotate`."""
from __future__ import annotations

import json

import click
from sqlalchemy import select

from shared.db import session_scope
from shared.settings import get_settings


@click.group()
def keys() -> None:
    """Encryption keys of the secrets at rest (ENCRYPTION_KEYS)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret with the newest key (the first of ENCRYPTION_KEYS)."""
    from shared import crypto
    from shared.models import GoogleIntegration, GooglePendingLink, MailMessage, Webhook

    settings = get_settings()
    columns = (
        (GoogleIntegration, ("refresh_token_encrypted", "access_token_encrypted")),
        (GooglePendingLink, ("refresh_token_encrypted", "access_token_encrypted")),
        (MailMessage, ("body_encrypted",)),
        (Webhook, ("secret_encrypted",)),
    )
    counts = {}
    try:
        with session_scope() as session:
            for model, names in columns:
                for row in session.scalars(select(model)).yield_per(500):
                    for name in names:
                        value = getattr(row, name)
                        if value:
                            setattr(row, name, crypto.rotate(value, settings))
                            counts[model.__tablename__] = counts.get(model.__tablename__, 0) + 1
    except (crypto.EncryptionNotConfigured, crypto.DecryptionFailed) as exc:
        # One transaction: nothing was changed.
        raise click.ClickException(str(exc))
    total = sum(counts.values())
    click.echo(f"re-encrypted {total} secrets with the newest key " + json.dumps(counts))
