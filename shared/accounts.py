"""Accounts: passwords people can change and reset (the services the api and the mail
worker call), and the platform's own system account.

A reset link carries 32 random bytes; only their SHA-256 is stored, so a copy of the
database opens no account. A link is valid RESET_MINUTES, once: it is consumed by one
conditional UPDATE, so two uses racing cannot both win, and a newer link voids the older
ones. Whether an address has an account is never said: the api always answers the same and
the worker (shared.account_mail) looks the user up.
"""
from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import revocation
from shared.models import RESERVED_EMAIL_DOMAIN, SYSTEM_ROLE, PasswordReset, RefreshToken, User, utcnow
from shared.passwords import hash_password, verify_password
from shared.settings import Settings

SYSTEM_EMAIL = f"system@{RESERVED_EMAIL_DOMAIN}"


def system_user(session: Session) -> User:
    """The platform's own admin account (made by migration 0007; made again should it be gone)."""
    user = session.scalar(select(User).where(User.role == SYSTEM_ROLE))
    if user is None:
        taken = session.scalar(select(User.id).where(User.email == SYSTEM_EMAIL)) is not None
        email = f"system-{uuid.uuid4().hex[:12]}@{RESERVED_EMAIL_DOMAIN}" if taken else SYSTEM_EMAIL
        try:
            with session.begin_nested():
                user = User(email=email, password_hash="!", role=SYSTEM_ROLE)
                session.add(user)
        except IntegrityError:  # a concurrent beat made it first (ux_users_system)
            user = session.scalar(select(User).where(User.role == SYSTEM_ROLE))
    return user


RESET_MINUTES = 30
RESET_PAGE = "/app/reset"


class WrongPassword(Exception):
    """The current password given does not match."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def change_password(*, session: Session, user: User, current: str, new: str, keep_family) -> list:
    """Set a new password when `current` matches; revoke every other login (not yet committed).

    Returns the families signed out: after the commit, hand them to
    revocation.remember_revoked_families so their access tokens stop at once too.
    """
    if not verify_password(user.password_hash, current):
        raise WrongPassword()
    user.password_hash = hash_password(new)
    others = RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None)
    if keep_family is not None:
        others += (RefreshToken.family_id != keep_family,)
    return list(session.scalars(
        update(RefreshToken).where(*others).values(revoked_at=utcnow()).returning(RefreshToken.family_id)
    ).unique())


def issue_reset(*, session: Session, email: str, settings: Settings) -> tuple[User, str] | None:
    """A new reset link for the account of `email` (older links voided), or None when there is
    no such account that may sign in. Not yet committed."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or user.role == SYSTEM_ROLE or user.disabled_at is not None:
        return None
    now = utcnow()
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                    .values(used_at=now))
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=_digest(token), created_at=now,
                              expires_at=now + timedelta(minutes=RESET_MINUTES)))
    # The token rides in the fragment: browsers never send it to a server, nor in a Referer.
    return user, f"{settings.public_base_url.rstrip('/')}{RESET_PAGE}#token={token}"


def consume_reset(*, session: Session, token: str, new_password: str):
    """Use a reset link once: set the password, sign every login out. Returns (user id, version)
    to publish after the commit (revocation.publish_version), or None for a bad, used or
    expired link. Not yet committed."""
    now = utcnow()
    user_id = session.scalar(
        update(PasswordReset)
        .where(PasswordReset.token_hash == _digest(token), PasswordReset.used_at.is_(None),
               PasswordReset.expires_at > now)
        .values(used_at=now).returning(PasswordReset.user_id)
    )
    if user_id is None:
        return None
    session.execute(update(User).where(User.id == user_id).values(password_hash=hash_password(new_password)))
    session.execute(update(RefreshToken).where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    return user_id, revocation.bump_version(session, user_id)
