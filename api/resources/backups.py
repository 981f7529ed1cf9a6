"""Backups, for admins: what exists and whether it was verified."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import select

from api.db import get_read_db
from api.pagination import page
from api.schemas import PageQuerySchema, page_schema
from api.security import auth_required, current_user
from shared.backups import backup_to_dict
from shared.models import Backup

blp = Blueprint("admin_backups", __name__, url_prefix="/v1/admin/backups",
                description="Database backups (admins only); create and verify them with ops.* jobs.")


class BackupSchema(Schema):
    id = fields.UUID()
    filename = fields.String()
    format = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    tables = fields.Integer()
    rows = fields.Integer()
    created_at = fields.String()
    verified_at = fields.String(allow_none=True)
    verify_status = fields.String(allow_none=True)
    verify_message = fields.String(allow_none=True)
    manual = fields.Boolean(metadata={"description": "taken by hand: kept BACKUP_KEEP_MANUAL_DAYS whatever retention says"})


BackupPageSchema = page_schema(BackupSchema, "BackupPageSchema")


@blp.route("")
class AdminBackups(MethodView):
    decorators = [auth_required(admin=True)]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, BackupPageSchema)
    @blp.alt_response(403, description="Not an admin.")
    def get(self, query):
        """Backups, newest first, with their verification state."""
        return page(get_read_db(current_user().id), select(Backup), Backup, cursor=query["cursor"], limit=query["limit"],
                    to_dict=backup_to_dict)
