"""Request authentication: short-lived JWT access tokens and rotating refresh tokens.

Refresh tokens are random strings stored as SHA-256 hashes. Each use rotates the token
within its family; presenting a rotated token again means it was stolen or replayed,
so the whole family is revoked and its holder must log in again. An access token names
its family and its user's token version, so a revoked family or a "log out everywhere"
ends the access tokens too, at once (shared.revocation).
"""
from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import TypeVar

import jwt
import redis
from flask import current_app, g, request
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.db import get_db
from api.errors import ApiError
from shared import revocation
from shared.models import SYSTEM_ROLE, Principal, RefreshToken, User, utcnow
from shared.redis_clients import cache_redis
from shared.settings import Settings

ALGORITHM = "HS256"
ISSUER = "personal-assistant"


def current_settings() -> Settings:
    """The settings this app was created with."""
    return current_app.config["SETTINGS"]


def issue_access_token(user: User, settings: Settings, family_id: uuid.UUID | None = None) -> str:
    """An access token of the login `family_id` (none given: a family of its own, which nothing revokes)."""
    now = utcnow()
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "type": "access",
        "iss": ISSUER,
        "iat": now,
        "exp": now + timedelta(minutes=settings.jwt_access_minutes),
        "jti": uuid.uuid4().hex,
        "fam": str(family_id or uuid.uuid4()),
        "ver": user.token_version,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> dict:
    """The token's claims; raises jwt.InvalidTokenError for anything not ours and current."""
    # Only HS256 is accepted: "alg": "none" and algorithm confusion fail here.
    claims = jwt.decode(
        token, settings.jwt_secret, algorithms=[ALGORITHM], issuer=ISSUER,
        options={"require": ["exp", "iat", "sub", "type"]},
    )
    if claims.get("type") != "access":
        raise jwt.InvalidTokenError("not an access token")
    return claims


def request_claims(token: str) -> dict:
    """decode_access_token for this request, verified once however many hooks ask
    (request logging, rate-limit keys and the view's auth each want the user id)."""
    cached = g.get("_token_claims")
    if cached is not None and cached[0] == token:
        if isinstance(cached[1], Exception):
            raise cached[1]
        return cached[1]
    try:
        claims = decode_access_token(token, current_settings())
    except jwt.InvalidTokenError as exc:
        g._token_claims = (token, exc)
        raise
    g._token_claims = (token, claims)
    return claims


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_refresh_token(session: Session, user: User, settings: Settings, family_id: uuid.UUID | None = None) -> str:
    token = secrets.token_urlsafe(48)
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=_hash(token),
            expires_at=utcnow() + timedelta(days=settings.jwt_refresh_days),
        )
    )
    return token


def token_pair(session: Session, user: User, settings: Settings, family_id: uuid.UUID | None = None) -> dict:
    """The login/refresh answer (the caller commits)."""
    family_id = family_id or uuid.uuid4()
    return {
        "access_token": issue_access_token(user, settings, family_id),
        "refresh_token": issue_refresh_token(session, user, settings, family_id),
        "token_type": "Bearer",
        "expires_in": settings.jwt_access_minutes * 60,
    }


def rotate_refresh_token(session: Session, token: str, settings: Settings) -> dict:
    """Exchange a refresh token for a new pair; reuse of a rotated one revokes its family."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash(token)).with_for_update())
    now = utcnow()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise ApiError(401, "invalid_refresh_token", "The refresh token is invalid, expired or revoked.")
    if row.rotated_at is not None:
        revoke_family(session, row.family_id, settings)
        raise ApiError(401, "refresh_token_reused",
                       "This refresh token was already used; every session of this login is now revoked.")
    # Compare-and-set, so two concurrent refreshes with one token cannot both succeed.
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
    )
    if not result.rowcount:
        revoke_family(session, row.family_id, settings)
        raise ApiError(401, "refresh_token_reused", "This refresh token was already used.")
    user = session.get(User, row.user_id)
    if not can_sign_in(user):
        session.rollback()
        raise ApiError(401, "invalid_refresh_token", "The refresh token is invalid, expired or revoked.")
    pair = token_pair(session, user, settings, family_id=row.family_id)
    session.commit()
    return pair


def revoke_family(session: Session, family_id: uuid.UUID, settings: Settings) -> None:
    """Revoke a login's refresh tokens and, at once, its access tokens (commits)."""
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    session.commit()
    revocation.remember_revoked_families([family_id], settings)


def logout(session: Session, token: str, settings: Settings, *, everywhere: bool = False) -> None:
    """Revoke the login of `token`, or with `everywhere` every login of its user (an unknown token: nothing)."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == _hash(token)))
    if row is None:
        return
    if not everywhere:
        revoke_family(session, row.family_id, settings)
        return
    if row.revoked_at is not None:
        return  # a revoked token speaks for no one
    session.execute(
        update(RefreshToken).where(RefreshToken.user_id == row.user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    version = revocation.bump_version(session, row.user_id)
    session.commit()
    revocation.publish_version(row.user_id, version, settings)


def can_sign_in(user: User | None) -> bool:
    """A person's account that is not disabled (the system account never signs in)."""
    return user is not None and user.role != SYSTEM_ROLE and user.disabled_at is None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_user() -> User | Principal:
    """The authenticated user of this request (set by @auth_required)."""
    return g.user


Owned = TypeVar("Owned")


def owned_or_404(model: type[Owned], object_id, *, what: str | None = None) -> Owned:
    """The caller's row of `model` with this id, or 404: another user's row answers exactly
    like a missing one (never 403, so ids cannot be probed). Every ownership check by id uses it."""
    row = get_db().get(model, object_id)
    if row is None or row.user_id != current_user().id:
        raise ApiError(404, "not_found", f"No such {what or model.__name__.lower()}.")
    return row


def lock_owner(session, user_id) -> None:
    """Hold the user's row until commit, so that a count-then-insert cap (webhooks, devices)
    cannot be passed by concurrent requests that all count below it.

    PostgreSQL: a row lock. SQLite: every transaction began IMMEDIATE, which already
    serializes writers (shared.db).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(User.id).where(User.id == user_id).with_for_update())


def auth_required(admin: bool = False, *, row: bool = True):
    """Require a valid access token of a user who still exists (and is an admin, if asked).

    `row=False`: the view needs only the user's id and role, so a token that Redis vouches for
    (its user's version and family, as cached polls check) is authorised without reading the
    user's row; current_user() is then a Principal. Otherwise the row is read, as always.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            authenticate(admin=admin, row=row)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def authenticate(*, admin: bool = False, row: bool = True) -> User | Principal:
    """What auth_required does before its view: the request's user (also in g.user), or a 401/403."""
    from api.db import get_db

    token = bearer_token()
    if token is None:
        raise ApiError(401, "unauthorized", "Send an access token: Authorization: Bearer <token>.",
                       headers={"WWW-Authenticate": "Bearer"})
    try:
        claims = request_claims(token)
        user_id = uuid.UUID(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise ApiError(401, "token_expired", "The access token expired; refresh it.",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    except (jwt.InvalidTokenError, ValueError):
        raise ApiError(401, "invalid_token", "The access token is invalid.",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    principal = None if row else _vouched_by_cache(claims, user_id)
    if principal is not None:
        user = principal
    else:
        session = get_db()
        user = session.get(User, user_id)
        if user is None:  # deleted since the token was issued
            raise ApiError(401, "invalid_token", "The access token's user no longer exists.",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if not can_sign_in(user) or revocation.is_revoked(claims, session=session, settings=current_settings()):
            raise ApiError(401, "token_revoked", "This sign-in has ended (logged out); sign in again.",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if admin and not user.is_admin:
        raise ApiError(403, "forbidden", "This needs an admin.")
    g.user = user
    return user


def _vouched_by_cache(claims: dict, user_id: uuid.UUID) -> Principal | None:
    """The token's user, when Redis alone says the token is current: its family not signed out
    and its user's version the token's (a deleted or disabled user's version has moved on).
    None: the row and the database decide."""
    role = claims.get("role")
    if not isinstance(role, str) or role == SYSTEM_ROLE:
        return None
    try:
        pipe = cache_redis().pipeline(transaction=False)
        revocation.queue_check(pipe, claims)
        cached_version, family_revoked = pipe.execute()
    except redis.RedisError:
        return None
    if not revocation.current_in_cache(claims, cached_version, family_revoked):
        return None
    return Principal(id=user_id, role=role)


def user_id_from_token() -> str | None:
    """The user id of a valid bearer token, without touching the database (rate-limit keys)."""
    token = bearer_token()
    if token is None:
        return None
    try:
        return request_claims(token)["sub"]
    except jwt.InvalidTokenError:
        return None


def request_origin():
    """This request's id and client address, for an audit record (shared.audit)."""
    from flask import request

    from shared.audit import Origin

    return Origin(request_id=g.get("request_id"), ip=request.remote_addr)
