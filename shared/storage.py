"""Where artifacts and backups live: local directories (the default) or S3-compatible
object storage (`OBJECT_STORAGE_URL=s3://bucket/prefix`), behind one small interface.

With object storage any api replica serves what any worker wrote, and a backup outlives the
host that made it. Keys are relative paths: an artifact's `<user>/<job>/<name>`, a backup's
file name; in a bucket they sit under `<prefix>/artifacts/` and `<prefix>/backups/`.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit

from shared.settings import Settings

PRESIGNED_SECONDS = 300  # a download link handed to a client: short-lived, it is a bearer credential
# Backups hold password hashes and encrypted tokens, artifacts and exports a person's mail and
# agenda: only the service's own user may read them, whatever the process's umask says.
PRIVATE_FILE, PRIVATE_DIR = 0o600, 0o700


def private_dir(path: Path) -> Path:
    """`path` as a directory, each level this call creates made 0700 (existing ones are left alone)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for level in reversed(missing):
        try:
            level.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:  # another process made it meanwhile
            continue
        os.chmod(level, PRIVATE_DIR)  # mkdir's mode passes through the umask
    return missing[0] if missing else path


_staging: Path | None = None


class Storage:
    """A place to put, fetch and delete files by key."""

    def put(self, key: str, *, source: Path | None = None, data: bytes | None = None,
            content_type: str = "application/octet-stream") -> None:
        """Store the file `source` (moved or uploaded, then gone) or `data` under `key`, whole or not at all."""
        raise NotImplementedError

    def fetch(self, key: str, target: Path) -> bool:
        """Copy the object at `key` into the file `target`; False when there is none."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix/`, relative to the storage like the keys `put` takes."""
        raise NotImplementedError

    def delete(self, keys: list[str]) -> int:
        """Delete these keys (missing ones are fine); returns how many were deleted."""
        raise NotImplementedError

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under `prefix/`."""
        raise NotImplementedError

    def local_path(self, key: str) -> Path | None:
        """The file itself, where the storage is a local directory; None for object storage."""
        return None

    def download_url(self, key: str, *, filename: str, content_type: str, inline: bool) -> str | None:
        """A short-lived URL a client downloads the object from directly; None where there is none."""
        return None

    def staging_dir(self) -> Path:
        """A local directory to write a large file in before `put` (on the same disk when local)."""
        global _staging
        if _staging is None or not _staging.is_dir():
            _staging = Path(tempfile.mkdtemp(prefix="assistant-staging-"))  # 0700, ours alone
        return _staging

    def where(self, key: str = "") -> str:
        """The location of `key` (or of the storage) for messages."""
        raise NotImplementedError


class LocalStorage(Storage):
    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key, *, source=None, data=None, content_type="application/octet-stream"):
        target = self._path(key)
        private_dir(target.parent)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            if source is not None:
                shutil.move(str(source), partial)
            else:
                partial.touch(mode=PRIVATE_FILE)
                partial.write_bytes(data or b"")
            os.chmod(partial, PRIVATE_FILE)  # before it gets its name: never readable by others
            os.replace(partial, target)  # atomic: a reader never sees half a file
        finally:
            partial.unlink(missing_ok=True)

    def fetch(self, key, target):
        try:
            shutil.copyfile(self._path(key), target)
            return True
        except FileNotFoundError:
            return False

    def exists(self, key):
        return self._path(key).is_file()

    def keys(self, prefix):
        folder = self._path(prefix) if prefix else self.root
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def delete(self, keys):
        deleted = 0
        for key in keys:
            try:
                self._path(key).unlink()
                deleted += 1
            except FileNotFoundError:
                pass
        return deleted

    def delete_prefix(self, prefix):
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def local_path(self, key):
        return self._path(key)

    def staging_dir(self):
        private_dir(self.root)
        return self.root

    def where(self, key=""):
        return str(self._path(key) if key else self.root)


class S3Storage(Storage):
    def __init__(self, settings: Settings, area: str):
        parts = urlsplit(settings.object_storage_url)
        self.bucket = parts.netloc
        self.prefix = "/".join(p for p in (parts.path.strip("/"), area) if p)
        self.settings = settings

    @property
    def client(self):
        return _client(self.settings.s3_endpoint_url, self.settings.aws_region)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def put(self, key, *, source=None, data=None, content_type="application/octet-stream"):
        extra = {"ContentType": content_type}
        if source is not None:
            # A multipart upload is completed whole or not at all: no reader sees half an object.
            self.client.upload_file(str(source), self.bucket, self._key(key), ExtraArgs=extra)
            Path(source).unlink(missing_ok=True)
        else:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data or b"", **extra)

    def fetch(self, key, target):
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.bucket, self._key(key), str(target))
            return True
        except ClientError as exc:
            if _missing(exc):
                return False
            raise

    def exists(self, key):
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if _missing(exc):
                return False
            raise

    def keys(self, prefix):
        start = len(self.prefix) + 1
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix.rstrip("/") + "/" if prefix else ""))
        return sorted(item["Key"][start:] for page in pages for item in page.get("Contents", []))

    def delete(self, keys):
        deleted = 0
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys at most
            batch = [{"Key": self._key(k)} for k in keys[start:start + 1000]]
            answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": False})
            deleted += len(answer.get("Deleted", []))
        return deleted

    def delete_prefix(self, prefix):
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(prefix.rstrip("/") + "/"))
        for page in pages:
            keys = [item["Key"] for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys],
                                                                       "Quiet": True})

    def download_url(self, key, *, filename, content_type, inline):
        # Signed for the address clients reach (S3_PUBLIC_ENDPOINT_URL): a phone cannot reach
        # http://minio:9000. Signing is local arithmetic: no request is made here.
        public = _client(self.settings.s3_public_endpoint_url or self.settings.s3_endpoint_url,
                         self.settings.aws_region)
        disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(filename)}"
        return public.generate_presigned_url(
            "get_object", ExpiresIn=PRESIGNED_SECONDS,
            Params={"Bucket": self.bucket, "Key": self._key(key), "ResponseContentType": content_type,
                    "ResponseContentDisposition": disposition, "ResponseCacheControl": "private, no-store"},
        )

    def where(self, key=""):
        return f"s3://{self.bucket}/{self._key(key) if key else self.prefix}"


def _missing(exc) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _client(endpoint_url: str, region: str):
    """One boto3 S3 client per endpoint and process (clients are thread-safe; forks make their own)."""
    key = (endpoint_url, region, os.getpid())
    client = _clients.get(key)
    if client is None:
        import boto3
        from botocore.config import Config

        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                config = Config(
                    signature_version="s3v4",
                    # MinIO and most S3-compatible stores answer on one host name, not per bucket.
                    s3={"addressing_style": "path" if endpoint_url else "auto"},
                    connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "standard"},
                )
                client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None,
                                                        region_name=region, config=config)
                _clients[key] = client
    return client


def artifact_storage(settings: Settings) -> Storage:
    if settings.object_storage_url:
        return S3Storage(settings, "artifacts")
    return LocalStorage(settings.artifacts_dir)


def backup_storage(settings: Settings) -> Storage:
    if settings.object_storage_url:
        return S3Storage(settings, "backups")
    return LocalStorage(settings.backup_dir)
