"""Access tokens that stop working before they expire: a signed-out login, or every login of a user.

An access token carries its login's refresh-token family (`fam`) and its user's token
version (`ver`). Logging out, or presenting a rotated refresh token again, revokes the
family: that device's access tokens stop at once, the user's other devices stay signed
in. "Log out everywhere" and account deletion move the user's version on instead.

Both live in the cache Redis (CACHE_REDIS_URL), so a request can be authorised from the
token's subject without reading the user's row:

    auth:family:{family_id}:revoked   "1", kept until the family's last access token has
                                      expired (JWT_ACCESS_MINUTES, plus a minute of skew)
    auth:user:{user_id}:version       the user's token version, or "deleted"; kept for
                                      JWT_ACCESS_MINUTES, reloaded from the database on a miss

The database stays the source of truth (refresh_tokens.revoked_at, users.token_version).
A miss on the version key reloads the version and the families the user revoked within
an access token's lifetime, so a Redis that restarted empty forgets no logout; a Redis
that does not answer is bypassed and the database answers alone.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.models import RefreshToken, User, utcnow
from shared.redis_clients import cache_redis
from shared.settings import Settings

log = logging.getLogger(__name__)

DELETED = "deleted"


def family_key(family_id) -> str:
    return f"auth:family:{family_id}:revoked"


def version_key(user_id) -> str:
    return f"auth:user:{user_id}:version"


def _lifetime(settings: Settings) -> int:
    """Seconds an access token issued now may still be presented."""
    return settings.jwt_access_minutes * 60 + 60


def remember_revoked_families(family_ids, settings: Settings) -> None:
    """Tell every api process at once that these families are signed out (after the commit that revoked them)."""
    try:
        with cache_redis().pipeline(transaction=False) as pipe:
            for family_id in family_ids:
                pipe.set(family_key(family_id), "1", ex=_lifetime(settings))
            pipe.execute()
    except redis.RedisError as exc:
        # Requests then see the revocation only after the version key's next reload.
        log.warning("revoked families not published to Redis: %s", exc)


def bump_version(session: Session, user_id) -> int:
    """Move the user's token version on (not committed: commit, then publish_version)."""
    return session.execute(
        update(User).where(User.id == user_id).values(token_version=User.token_version + 1)
        .returning(User.token_version)
    ).scalar_one()


def publish_version(user_id, version: int | str, settings: Settings) -> None:
    """Make the user's new version (or DELETED) the one every api process checks against."""
    try:
        cache_redis().set(version_key(user_id), str(version), ex=_lifetime(settings))
    except redis.RedisError as exc:
        log.warning("token version of %s not published to Redis: %s", user_id, exc)


def is_revoked(claims: dict, *, session: Session, settings: Settings) -> bool:
    """True when the access token's family was signed out or its user's version moved on."""
    user_id, family, version = claims["sub"], claims.get("fam"), claims.get("ver")
    if family is None or not isinstance(version, int):
        return True  # issued before tokens carried these: one refresh away from a new one
    try:
        cached_version, family_revoked = (
            cache_redis().pipeline(transaction=False).get(version_key(user_id)).exists(family_key(family)).execute()
        )
    except redis.RedisError:
        current, revoked_families = _from_database(session, user_id, settings)
        return current != str(version) or family in revoked_families
    if cached_version is None:
        current, revoked_families = _reload(session, user_id, settings)
        family_revoked = family_revoked or family in revoked_families
    else:
        current = cached_version.decode()
    return bool(family_revoked) or current != str(version)


def queue_check(pipe, claims: dict) -> None:
    """Add what `current_in_cache` needs about this token to a Redis pipeline."""
    pipe.get(version_key(claims["sub"]))
    pipe.exists(family_key(claims.get("fam")))


def current_in_cache(claims: dict, cached_version, family_revoked) -> bool:
    """True when Redis alone vouches for the token (its family not signed out, its user's version
    cached and the token's); False means "ask is_revoked", which knows the database."""
    version = claims.get("ver")
    if claims.get("fam") is None or not isinstance(version, int) or cached_version is None or family_revoked:
        return False
    return cached_version.decode() == str(version)


def _from_database(session: Session, user_id, settings: Settings) -> tuple[str, set[str]]:
    """The user's version (or DELETED) and the families they revoked within an access token's lifetime."""
    uid = uuid.UUID(str(user_id))
    version = session.scalar(select(User.token_version).where(User.id == uid))
    since = utcnow() - timedelta(seconds=_lifetime(settings))
    families = session.scalars(
        select(RefreshToken.family_id).where(RefreshToken.user_id == uid, RefreshToken.revoked_at > since).distinct()
    ).all()
    return (DELETED if version is None else str(version)), {str(f) for f in families}


def _reload(session: Session, user_id, settings: Settings) -> tuple[str, set[str]]:
    version, families = _from_database(session, user_id, settings)
    ttl = _lifetime(settings)
    try:
        with cache_redis().pipeline(transaction=False) as pipe:
            # NX: a version published meanwhile (a logout everywhere) is newer than this read.
            pipe.set(version_key(user_id), version, ex=ttl, nx=True)
            for family_id in families:
                pipe.set(family_key(family_id), "1", ex=ttl)
            pipe.execute()
    except redis.RedisError as exc:
        log.warning("token state of %s not cached: %s", user_id, exc)
    return version, families
