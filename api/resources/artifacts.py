"""Job artifacts: large results (report HTML, charts, export archives) as file downloads."""
from __future__ import annotations

from flask import redirect, send_file
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from api.db import get_db
from api.errors import ApiError
from api.security import auth_required, current_settings, owned_or_404
from shared import artifacts
from shared.models import Artifact, Job, utcnow
from shared.storage import artifact_storage

blp = Blueprint("artifacts", __name__, url_prefix="/v1", description="Download a job's large results.")


class ArtifactQuerySchema(Schema):
    name = fields.String(load_default=None, validate=validate.Length(min=1, max=255),
                         metadata={"description": "Which artifact, when the job has several (default: its first)."})
    token = fields.String(load_default=None, validate=validate.Length(min=1, max=1000),
                          metadata={"description": "A signed link's token: no Authorization needed."})


def _not_found():
    return ApiError(404, "not_found", "No such artifact.")


def _artifact(job_id, name: str | None) -> Artifact:
    query = select(Artifact).where(Artifact.job_id == job_id)
    if name is not None:
        query = query.where(Artifact.name == name)
    artifact = get_db().scalars(query.order_by(Artifact.created_at, Artifact.name).limit(1)).first()
    if artifact is None or (artifact.expires_at is not None and artifact.expires_at <= utcnow()):
        raise _not_found()
    return artifact


def _send(artifact: Artifact):
    storage = artifact_storage(current_settings())
    inline = artifact.content_type.startswith(("text/html", "image/", "application/json"))
    path = storage.local_path(artifact.path)
    if path is None:
        # Object storage: the client fetches it from the store with a short-lived presigned
        # URL, so no api process streams (or buffers) the file. A presigned GET cannot carry
        # a CSP or nosniff, so HTML from there is a download, never a page on the store's origin.
        if not storage.exists(artifact.path):
            raise _not_found()  # purged (retention) or never finished uploading
        inline = inline and not artifact.content_type.startswith("text/html")
        response = redirect(storage.download_url(artifact.path, filename=artifact.name,
                                                 content_type=artifact.content_type, inline=inline), 302)
        response.headers["Cache-Control"] = "private, no-store"  # the URL itself is a credential
        return response
    if not path.is_file():
        raise _not_found()  # purged from disk (retention) or lost with a volume
    response = send_file(path, mimetype=artifact.content_type, as_attachment=not inline,
                         download_name=artifact.name, etag=artifact.sha256, max_age=0)
    response.headers["Cache-Control"] = "private, no-cache"
    # An HTML report is ours but shows the user's data: no scripts, no framing elsewhere.
    response.headers["Content-Security-Policy"] = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
                                                   "frame-ancestors 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@auth_required()
def _send_own(job_id, name: str | None):
    owned_or_404(Job, job_id, what="artifact")
    return _send(_artifact(job_id, name))


@blp.route("/jobs/<uuid:job_id>/artifact")
class JobArtifact(MethodView):
    @blp.arguments(ArtifactQuerySchema, location="query")
    @blp.response(200, description="The file, with its content type (local storage).")
    @blp.alt_response(302, description="Object storage: a short-lived presigned URL to fetch the file from.")
    @blp.alt_response(404, description="No such artifact, not yours, expired, or a bad or expired link.")
    def get(self, query, job_id):
        """Download a job's artifact (`?name=`), with a bearer token or a signed link's `token`."""
        if query["token"] is None:
            return _send_own(job_id, query["name"])
        artifact = _artifact(job_id, query["name"])
        # A refused link is a 404 like a missing artifact: it must not confirm what exists.
        if not artifacts.verify(current_settings(), query["token"], job_id=job_id, name=artifact.name):
            raise _not_found()
        return _send(artifact)
