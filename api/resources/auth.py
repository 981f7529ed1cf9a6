"""Registration, login, token refresh and logout."""
from __future__ import annotations

import hashlib
import logging

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.db import get_db
from api.errors import ApiError
from api.schemas import (
    LoginSchema,
    LogoutSchema,
    PasswordResetConfirmSchema,
    PasswordResetSchema,
    RefreshSchema,
    RegisterSchema,
    TokenSchema,
    UserSchema,
)
from api.security import can_sign_in, current_settings, logout, request_origin, rotate_refresh_token, token_pair
from shared import audit, revocation
from shared.accounts import consume_reset
from shared.models import User
from shared.passwords import hash_password, verify_password

log = logging.getLogger(__name__)
RESET_TASK = "account.password_reset_mail"  # workers.account_mail (the api does not import workers)

blp = Blueprint("auth", __name__, url_prefix="/v1/auth", description="Accounts and tokens.")


@blp.after_request
def _no_store(response):
    # Token answers must never sit in a browser's or a proxy's cache (RFC 6749 section 5.1).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response



@blp.route("/register")
class Register(MethodView):
    @blp.arguments(RegisterSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="The email is taken.")
    def post(self, data):
        """Create an account."""
        session = get_db()
        email = data["email"].strip().lower()
        if session.scalar(select(User.id).where(User.email == email)) is not None:
            raise ApiError(409, "email_taken", "An account with this email exists; log in instead.")
        user = User(email=email, password_hash=hash_password(data["password"]), timezone=data["timezone"],
                    locale=data["locale"])
        session.add(user)
        try:
            session.commit()
        except IntegrityError:  # a concurrent registration of the same email
            session.rollback()
            raise ApiError(409, "email_taken", "An account with this email exists; log in instead.")
        return user


@blp.route("/login")
class Login(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Wrong email or password.")
    def post(self, data):
        """Exchange email and password for an access and a refresh token."""
        session = get_db()
        user = session.scalar(select(User).where(User.email == data["email"].strip().lower()))
        if not verify_password(user.password_hash if user else None, data["password"]) or not can_sign_in(user):
            # Kept before the 401: a password guessed at is what the account's owner wants to see.
            # An unknown email names nobody, and is not stored (it may be a person's typo of theirs).
            audit.record(session, actor=audit.ANONYMOUS, action="auth.sign_in_failed",
                         resource="session", subjects=[user.id] if user else [], request=request_origin())
            session.commit()
            raise ApiError(401, "invalid_credentials", "Wrong email or password.")
        pair = token_pair(session, user, current_settings())
        audit.record(session, actor=user, action="auth.sign_in", resource="session", subjects=[user.id],
                     request=request_origin())
        session.commit()
        return pair


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenSchema)
    @blp.alt_response(401, description="Invalid, expired, revoked or reused refresh token.")
    def post(self, data):
        """Rotate a refresh token: a new pair, and the old token stops working."""
        return rotate_refresh_token(get_db(), data["refresh_token"], current_settings())


@blp.route("/logout")
class Logout(MethodView):
    @blp.arguments(LogoutSchema)
    @blp.response(204)
    def post(self, data):
        """Sign out: this login's refresh and access tokens stop working (with `everywhere`, every login's)."""
        if data.get("refresh_token"):
            logout(get_db(), data["refresh_token"], current_settings(), everywhere=data["everywhere"])
        return None


RESET_ANSWER = {"message": "If an account uses this address, a link to reset its password is on its way."}
RESETS_PER_ADDRESS = "5/hour"


@blp.route("/password-reset")
class PasswordReset(MethodView):
    @blp.response(200, Schema.from_dict({"available": fields.Boolean()}, name="PasswordResetAvailability"))
    def get(self):
        """Whether this server can mail reset links (SMTP_URL); clients hide "Forgot password?" if not."""
        return {"available": bool(current_settings().smtp_url)}

    @blp.arguments(PasswordResetSchema)
    @blp.response(202, Schema.from_dict({"message": fields.String()}, name="PasswordResetAccepted"))
    @blp.alt_response(429, description="Too many reset requests for this address or from this address's IP.")
    def post(self, data):
        """Mail a single-use, 30-minute reset link to this address, if it has an account.

        The answer and the work are the same either way (the worker looks the address up),
        so neither the body nor the time taken says whether the account exists.
        """
        email = data["email"].strip().lower()
        _limit_per_address(email)
        from shared.celery_app import app

        try:
            app.send_task(RESET_TASK, args=[email], queue="interactive")
        except Exception as exc:  # an unreachable broker: the person may ask again
            log.warning("password reset mail not queued: %s", exc)
            raise ApiError(503, "unavailable", "Try again in a moment.", headers={"Retry-After": "5"}) from None
        return RESET_ANSWER


@blp.route("/password-reset/confirm")
class PasswordResetConfirm(MethodView):
    @blp.arguments(PasswordResetConfirmSchema)
    @blp.response(204)
    @blp.alt_response(400, description="The link is unknown, used or expired.")
    def post(self, data):
        """Set a new password with a reset link's token; every sign-in of the account ends."""
        session = get_db()
        consumed = consume_reset(session=session, token=data["token"], new_password=data["new_password"])
        if consumed is None:
            raise ApiError(400, "invalid_reset_token", "This reset link is unknown, used or expired; ask for a new one.",
                           errors={"token": ["Unknown, used or expired."]})
        audit.record(session, actor=audit.ANONYMOUS, action="auth.password_reset", resource="account",
                     subjects=[consumed[0]], request=request_origin())
        session.commit()
        revocation.publish_version(consumed[0], consumed[1], current_settings())
        return None


def _limit_per_address(email: str) -> None:
    """At most RESETS_PER_ADDRESS mails to one address (per IP: the credentials limit, api.limits).
    Counted for every address alike, so the limit says nothing about the account either."""
    from limits import parse

    limiter = current_app.extensions["assistant_limiter"]
    if limiter.enabled and not limiter.limiter.hit(parse(RESETS_PER_ADDRESS), "password-reset",
                                                   hashlib.sha256(email.encode()).hexdigest()):
        raise ApiError(429, "rate_limited", "Too many reset requests for this address; try again later.",
                       headers={"Retry-After": "600"})
