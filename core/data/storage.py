"""The media store: input images, outputs, thumbnails and exports, addressed by content hash.

``MEDIA_URL`` picks the backend: a local directory (the embedded default) or a private S3
bucket. Keys are always ``{kind}/{sha[:2]}/{sha}.{ext}``, computed here from the bytes; a name
a user typed never reaches a path or an object key.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from core.errors import ConfigurationError, NotFound, StorageError

if TYPE_CHECKING:
    from core.config import Settings

KINDS = ("inputs", "outputs", "thumbnails", "exports")
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "application/json": "json",
    "text/csv": "csv",
    "text/x-python": "py",
    "text/plain": "txt",
    "application/zip": "zip",
}
CONTENT_TYPES = {ext: content_type for content_type, ext in EXTENSIONS.items()}
_KEY_RE = re.compile(
    rf"(?P<kind>{'|'.join(KINDS)})/(?P<fan>[0-9a-f]{{2}})/(?P<sha>[0-9a-f]{{64}})"
    rf"\.(?P<ext>{'|'.join(CONTENT_TYPES)})"
)


def make_key(data: bytes, *, kind: str, content_type: str) -> str:
    """The key ``data`` is stored under; ValueError for an unknown kind or content type."""
    if kind not in KINDS:
        raise ValueError(f"Unknown media kind {kind!r}; expected one of {', '.join(KINDS)}")
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime not in EXTENSIONS:
        raise ValueError(
            f"Unsupported content type {content_type!r}; expected one of {', '.join(EXTENSIONS)}"
        )
    sha = hashlib.sha256(data).hexdigest()
    return f"{kind}/{sha[:2]}/{sha}.{EXTENSIONS[mime]}"


def _validate_key(key: str) -> str:
    # fullmatch against a closed alphabet rules out "..", absolute paths, backslashes,
    # NUL bytes and URL tricks in one place; every public method goes through here.
    match = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
    if match is None or match["sha"][:2] != match["fan"]:
        raise ValueError(f"Not a media key: {key!r}")
    return key


def content_type_of(key: str) -> str:
    """The content type a stored object was written with, from its key's extension."""
    return CONTENT_TYPES[_validate_key(key).rsplit(".", 1)[1]]


class MediaStore(ABC):
    """Content-addressed storage of bytes. Every method validates the key it is given."""

    @abstractmethod
    def put(self, data: bytes, *, kind: str, content_type: str) -> str:
        """Store ``data``; return its key. Storing the same bytes again is a no-op."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """The stored bytes; NotFound when there is no such object."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is fine."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where a browser or client can read the object (file URI or presigned URL)."""

    def local_path(self, key: str) -> Path | None:
        """The object's path on this machine, for stores that have one."""
        _validate_key(key)
        return None

    @abstractmethod
    def describe(self) -> str:
        """One line for the health panel; never contains credentials."""

    @abstractmethod
    def check(self) -> None:
        """Raise StorageError saying how to fix it when the store cannot be used."""


class LocalMediaStore(MediaStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _validate_key(key)

    def put(self, data: bytes, *, kind: str, content_type: str) -> str:
        key = make_key(data, kind=kind, content_type=content_type)
        target = self._path(key)
        if not target.exists():
            self._write_atomically(target, data)
        return key

    def _write_atomically(self, target: Path, data: bytes) -> None:
        # Temp file in the target directory so os.replace is a rename on one filesystem:
        # readers see either no file or the whole file, never a prefix of it.
        tmp_name = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())
            os.replace(tmp_name, target)
            tmp_name = None
        except OSError as exc:
            raise self._write_error(exc, target) from exc
        finally:
            if tmp_name is not None:
                Path(tmp_name).unlink(missing_ok=True)

    def _write_error(self, exc: OSError, target: Path) -> StorageError:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageError(
                f"The media disk is full at {self.root}: free space or point MEDIA_URL elsewhere."
            )
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return StorageError(
                f"The media directory {target.parent} is not writable ({exc.strerror}): "
                "fix its permissions or point MEDIA_URL elsewhere."
            )
        return StorageError(f"Could not write {target}: {exc.strerror or exc}.")

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFound(f"No media object {key} in {self.root}.") from None
        except OSError as exc:
            raise StorageError(f"Could not read {path}: {exc.strerror or exc}.") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"Could not delete {path}: {exc.strerror or exc}.") from exc

    def url(self, key: str) -> str:
        return self._path(key).absolute().as_uri()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def describe(self) -> str:
        return f"local disk at {self.root}"

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root, prefix=".check-") as probe:
                probe.write(b"ok")
                probe.flush()
                os.fsync(probe.fileno())
        except OSError as exc:
            raise self._write_error(exc, self.root / "probe") from exc


class S3MediaStore(MediaStore):
    """A private bucket: objects are written without ACLs and read through presigned URLs."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        url_ttl_s: int = 900,
        server_side_encryption: str | None = "AES256",
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.url_ttl_s = url_ttl_s
        # MinIO without a KMS rejects SSE headers: pass None there. AWS encrypts either way.
        self.server_side_encryption = server_side_encryption
        self.client = client if client is not None else _make_s3_client(endpoint_url)

    def _object_key(self, key: str) -> str:
        key = _validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _where(self, key: str | None = None) -> str:
        path = f"{self.bucket}/{self._object_key(key)}" if key else self.bucket
        return f"s3://{path} ({_public_endpoint(self.endpoint_url)})"

    def put(self, data: bytes, *, kind: str, content_type: str) -> str:
        key = make_key(data, kind=kind, content_type=content_type)
        if self.exists(key):
            return key
        params = {
            "Bucket": self.bucket,
            "Key": self._object_key(key),
            "Body": data,
            "ContentType": content_type_of(key),
        }
        if self.server_side_encryption:
            params["ServerSideEncryption"] = self.server_side_encryption
        self._call("write", key, self.client.put_object, **params)
        return key

    def get(self, key: str) -> bytes:
        obj_key = self._object_key(key)

        def read() -> bytes:  # the body streams, so reading it can fail too
            return self.client.get_object(Bucket=self.bucket, Key=obj_key)["Body"].read()

        return self._call("read", key, read)

    def exists(self, key: str) -> bool:
        try:
            obj_key = self._object_key(key)
            self._call("check", key, self.client.head_object, Bucket=self.bucket, Key=obj_key)
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        obj_key = self._object_key(key)
        self._call("delete", key, self.client.delete_object, Bucket=self.bucket, Key=obj_key)

    def url(self, key: str) -> str:
        params = {"Bucket": self.bucket, "Key": self._object_key(key)}
        sign = self.client.generate_presigned_url
        return self._call("sign", key, sign, "get_object", Params=params, ExpiresIn=self.url_ttl_s)

    def describe(self) -> str:
        prefix = f"/{self.prefix}" if self.prefix else ""
        return f"S3 bucket s3://{self.bucket}{prefix} at {_public_endpoint(self.endpoint_url)}"

    def check(self) -> None:
        try:
            self._call("open", None, self.client.head_bucket, Bucket=self.bucket)
        except NotFound:
            raise self._missing_bucket() from None

    def _missing_bucket(self) -> StorageError:
        return StorageError(
            f"The S3 bucket {self.bucket} does not exist at "
            f"{_public_endpoint(self.endpoint_url)}: create it or fix MEDIA_URL."
        )

    def _call(self, action: str, key: str | None, method: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one S3 call, translating botocore errors into domain errors (no credentials)."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return method(*args, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "NoSuchBucket":
                raise self._missing_bucket() from exc
            if code in ("404", "NoSuchKey", "NotFound"):
                raise NotFound(f"No media object at {self._where(key)}.") from exc
            if code in ("403", "AccessDenied", "Forbidden"):
                raise StorageError(
                    f"Access denied to {self._where(key)}: give these credentials "
                    "s3:ListBucket, s3:GetObject, s3:PutObject and s3:DeleteObject on the bucket."
                ) from exc
            message = error.get("Message") or code
            raise StorageError(f"Could not {action} {self._where(key)}: {message}.") from exc
        except NoCredentialsError as exc:
            raise StorageError(
                f"No AWS credentials to {action} {self._where(key)}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, an AWS profile or an instance role."
            ) from exc
        except BotoCoreError as exc:
            raise StorageError(f"Could not {action} {self._where(key)}: {exc}.") from exc


def _make_s3_client(endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 5},
        # Custom endpoints (MinIO, moto) rarely have wildcard DNS for virtual-host buckets.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, config=config)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _public_endpoint(endpoint_url: str | None) -> str:
    return _without_credentials(endpoint_url) if endpoint_url else "AWS"


def open_media_store(
    settings_or_media_url: Settings | str,
    *,
    s3_endpoint_url: str | None = None,
    url_ttl_s: int | None = None,
    s3_client: Any = None,
) -> MediaStore:
    """The store MEDIA_URL names: ``file:///abs/path``, a plain path or ``s3://bucket/prefix``."""
    if isinstance(settings_or_media_url, str):
        media_url = settings_or_media_url
        endpoint = s3_endpoint_url or os.environ.get("S3_ENDPOINT_URL") or None
        ttl = url_ttl_s or 900
    else:
        settings = settings_or_media_url
        media_url = settings.media_url
        endpoint = s3_endpoint_url or settings.s3_endpoint_url or os.environ.get("S3_ENDPOINT_URL")
        ttl = url_ttl_s or settings.presigned_url_ttl_s
    accepted = "use file:///absolute/path, a plain directory path, or s3://bucket/prefix"
    media_url = media_url.strip()
    if not media_url:
        raise ConfigurationError(f"MEDIA_URL is empty: {accepted}.")
    parts = urlsplit(media_url)
    if not parts.scheme:
        return LocalMediaStore(Path(media_url).expanduser().resolve())
    shown = _without_credentials(media_url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigurationError(f"MEDIA_URL {shown} is not an absolute file URL: {accepted}.")
        return LocalMediaStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        if "@" in parts.netloc:
            raise ConfigurationError(
                f"MEDIA_URL {shown} carries credentials: remove them and use the "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment variables or a role."
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", parts.netloc):
            raise ConfigurationError(f"MEDIA_URL {shown} has no valid bucket name: {accepted}.")
        return S3MediaStore(
            parts.netloc, parts.path, endpoint_url=endpoint, client=s3_client, url_ttl_s=ttl
        )
    raise ConfigurationError(f"MEDIA_URL {shown} is not supported: {accepted}.")
