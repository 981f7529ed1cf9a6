"""The signed-in user's profile."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from api.db import get_db
from api.schemas import MePatchSchema, UserSchema
from api.security import auth_required, current_user

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
