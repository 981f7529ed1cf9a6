"""User accounts: `assistant users create-admin`."""
from __future__ import annotations

import sys

import click
from sqlalchemy import select

from shared.db import session_scope
from shared.models import RESERVED_EMAIL_DOMAIN, User, is_reserved_email
from shared.passwords import hash_password


@click.group()
def users() -> None:
    """User accounts."""


@users.command("create-admin")
@click.argument("email")
@click.option("--password", help="the password (it then shows in the process list; prefer the prompt or stdin)")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
def users_create_admin(email: str, password: str | None, password_stdin: bool) -> None:
    """Create an admin, or make an existing user an admin and change their password (asked first)."""
    email = email.strip().lower()
    with session_scope() as session:
        exists = session.scalar(select(User.id).where(User.email == email)) is not None
    if exists and password is None and not password_stdin:
        click.confirm(f"{email} already exists: make them an admin and change their password?", abort=True)
    if password_stdin:
        if password is not None:
            raise click.UsageError("give --password or --password-stdin, not both")
        password = sys.stdin.readline().rstrip("\r\n")
    elif password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    if is_reserved_email(email):
        raise click.BadParameter(f"addresses at {RESERVED_EMAIL_DOMAIN} are reserved for the platform",
                                 param_hint="EMAIL")
    with session_scope() as session:
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(email=email, role="admin", password_hash=hash_password(password))
            session.add(user)
            verb = "created"
        else:
            user.role = "admin"
            user.password_hash = hash_password(password)
            verb = "promoted; their password was changed"
        session.flush()
        click.echo(f"admin {email} {verb} ({user.id})")
