"""Artifacts: large job results kept as files, one row each, under ARTIFACTS_DIR or in
object storage (shared.storage).

A file's key is `<user_id>/<job_id>/<name>`: a job that runs again after its worker died
writes the same key again, and the (job_id, name) row is replaced, so a re-run never
leaves two. Owners read them at GET /v1/jobs/{id}/artifact?name=; anyone holding a signed
link (`artifact_url`) may read one until the link expires.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete
from sqlalchemy.orm import Session

from shared.models import Artifact, Job, utcnow
from shared.settings import Settings
from shared.storage import artifact_storage

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_SALT = "artifact-link"


def store(
    *,
    session: Session,
    settings: Settings,
    job: Job,
    name: str,
    content_type: str,
    data: bytes | None = None,
    source: Path | None = None,
    now: datetime | None = None,
) -> Artifact:
    """Store `data` (or move the file `source`) as the job's artifact `name`; the row joins the session."""
    if not NAME.fullmatch(name):
        raise ValueError(f"artifact name {name!r} is not a plain file name")
    key = f"{job.user_id}/{job.id}/{name}"
    if source is not None:
        digest, size = file_digest(source)
    else:
        data = data or b""
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
    artifact_storage(settings).put(key, source=source, data=data, content_type=content_type)

    session.execute(delete(Artifact).where(Artifact.job_id == job.id, Artifact.name == name))
    now = now or utcnow()
    artifact = Artifact(
        job_id=job.id, user_id=job.user_id, name=name, content_type=content_type, size=size,
        sha256=digest, path=key, created_at=now,
        expires_at=now + timedelta(days=settings.artifact_ttl_days),
    )
    session.add(artifact)
    session.flush()
    return artifact


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def remove_files(settings: Settings, artifacts) -> int:
    """Delete the artifacts' files (missing ones are fine); returns how many were deleted."""
    keys = [artifact.path for artifact in artifacts]
    return artifact_storage(settings).delete(keys) if keys else 0


def remove_user_files(settings: Settings, user_id) -> None:
    """Delete every artifact file of a user (an erased account)."""
    artifact_storage(settings).delete_prefix(str(user_id))


# -- signed links ----------------------------------------------------------------------


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt=_SALT)


def sign(settings: Settings, artifact: Artifact, *, now: datetime | None = None) -> tuple[str, datetime]:
    """A token for one artifact, valid until the earlier of the link lifetime and its expiry."""
    now = now or utcnow()
    expires = now + timedelta(seconds=settings.artifact_link_seconds)
    if artifact.expires_at is not None:
        expires = min(expires, artifact.expires_at)
    token = _serializer(settings).dumps([str(artifact.job_id), artifact.name, int(expires.timestamp())])
    return token, expires


def verify(settings: Settings, token: str, *, job_id, name: str, now: datetime | None = None) -> bool:
    """True when `token` is a link we signed for this job's artifact `name` and has not expired."""
    try:
        signed_job, signed_name, expires = _serializer(settings).loads(token)
    except (BadSignature, ValueError, TypeError):
        return False
    now = now or utcnow()
    return signed_job == str(job_id) and signed_name == name and isinstance(expires, int) and now.timestamp() < expires


def link(settings: Settings, artifact: Artifact, *, now: datetime | None = None) -> dict:
    """How a job result names an artifact: its authenticated path and a signed link."""
    token, expires = sign(settings, artifact, now=now)
    path = f"/v1/jobs/{artifact.job_id}/artifact?name={artifact.name}"
    return {
        "name": artifact.name,
        "content_type": artifact.content_type,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "url": path,
        "artifact_url": f"{path}&token={token}",
        "artifact_url_expires_at": expires.isoformat(),
    }
