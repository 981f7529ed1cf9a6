"""Registration, login, token refresh and logout."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.db import get_db
from api.errors import ApiError
from api.schemas import LoginSchema, LogoutSchema, RefreshSchema, RegisterSchema, TokenSchema, UserSchema
from api.security import can_sign_in, current_settings, logout, request_origin, rotate_refresh_token, token_pair
from shared import audit
from shared.models import User
from shared.passwords import hash_password, verify_password

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
