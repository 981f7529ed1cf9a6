"""The signed-in user's profile."""
from __future__ import annotations

import logging

from flask.views import MethodView
from flask_smorest import Blueprint

from api.db import get_db
from api.errors import ApiError
from api.schemas import MePatchSchema, PasswordChangeSchema, UserSchema
from api.security import auth_required, bearer_token, current_settings, current_user, request_claims, request_origin
from shared import audit, revocation
from shared.accounts import WrongPassword, change_password

CHANGED_TASK = "account.password_changed_mail"  # workers.account_mail

log = logging.getLogger(__name__)

blp = Blueprint("me", __name__, url_prefix="/v1/me", description="The signed-in user.")


@blp.route("")
class Me(MethodView):
    decorators = [auth_required()]

    @blp.response(200, UserSchema)
    def get(self):
        """Who am I."""
        return current_user()

    @blp.arguments(MePatchSchema)
    @blp.response(200, UserSchema)
    def patch(self, data):
        """Change the timezone (IANA name), the daily digest time (HH:MM local) or the locale (BCP 47)."""
        user = current_user()
        for name, value in data.items():
            setattr(user, name, value)
        get_db().commit()
        return user


@blp.route("/password")
class MyPassword(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    @blp.alt_response(403, description="The current password is wrong (wrong_password).")
    def post(self, data):
        """Change your password; every other sign-in ends, this one stays."""
        user, session = current_user(), get_db()
        try:
            signed_out = change_password(session=session, user=user, current=data["current_password"],
                                         new=data["new_password"], keep_family=_family())
        except WrongPassword:
            raise ApiError(403, "wrong_password", "The current password is wrong.",
                           errors={"current_password": ["Wrong password."]}) from None
        audit.record(session, actor=user, action="auth.password_change", resource="account", subjects=[user.id],
                     request=request_origin())
        session.commit()
        revocation.remember_revoked_families(signed_out, current_settings())
        from shared.celery_app import app

        try:
            app.send_task(CHANGED_TASK, args=[str(user.id)], queue="interactive")
        except Exception as exc:  # the change stands; only its notice is lost
            log.warning("password-changed mail not queued: %s", exc)
        return None


def _family():
    """The refresh family of this request's sign-in (kept when the password changes)."""
    import uuid

    family = request_claims(bearer_token()).get("fam")
    return uuid.UUID(family) if family else None
