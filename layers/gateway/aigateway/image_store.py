"""Where generated images go when they cannot (or should not) travel inline in the JSON answer.

A Lambda's buffered response is capped at 6 MB, and one high-resolution PNG as a base64 data URL
can pass that on its own. Such images are stored and the answer carries a time-limited URL:

- On AWS (`IMAGES_BUCKET` set): an S3 object under `images/<yyyy>/<mm>/<dd>/<request_id>-<n>.<ext>`,
  written with SSE-S3 (AES256) in a worker thread, returned as a presigned GET URL valid
  `IMAGES_URL_TTL_S` seconds. The bucket is private; its lifecycle rule deletes objects after 7 days.
- Locally (no bucket): a file `<request_id>-<n>.<ext>` in `$AIGATEWAY_HOME/images/`, served by
  `GET /api/ai/images/files/{name}?expires=<unix>&sig=<hex>` (api/images.py). The signature is
  HMAC-SHA256 over `name + "\\n" + expires` with a key derived from the JWT secret (see
  `signing_key`): every local gateway has one, nobody outside the deployment knows it, and
  rotating it invalidates outstanding links, which is what a rotation should do. It is
  compared in constant time; a bad or expired link is a 403, a good link to a deleted file a 404.
  Files older than the link lifetime are swept when new images are written.

Both implement `ImageStore.put`; `image_store(settings)` picks one; `Services.images` holds it per process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode

from .errors import AUTH_UNAUTHORIZED, GatewayError, not_found
from .private_files import write_private
from .secrets import resolve
from .settings import Settings

if TYPE_CHECKING:
    from .services import Services

FILES_PATH = "/api/ai/images/files/"
_DATA_URL = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,", re.IGNORECASE)
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
    "image/avif": "avif",
}
_TYPES = {ext: ctype for ctype, ext in _EXTENSIONS.items() if ctype != "image/jpg"}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")


@dataclass(frozen=True)
class DecodedImage:
    content_type: str
    data: bytes

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.content_type, "bin")


def decode_data_url(url: str) -> DecodedImage | None:
    """The bytes and media type of a base64 `data:image/...` URL; None for anything else."""
    m = _DATA_URL.match(url)
    if m is None:
        return None
    try:
        data = base64.b64decode(url[m.end() :], validate=False)
    except (binascii.Error, ValueError):
        return None
    return DecodedImage(m.group(1).lower(), data)


class ImageStore(Protocol):
    async def put(self, request_id: str, index: int, image: DecodedImage, *, base_url: str) -> str:
        """Store one image; return an absolute URL the caller can GET for a limited time."""
        ...


def _day_prefix(now: datetime) -> str:
    return f"images/{now:%Y}/{now:%m}/{now:%d}/"


class S3ImageStore:
    def __init__(self, bucket: str, ttl_s: int) -> None:
        self.bucket = bucket
        self.ttl_s = ttl_s
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:  # boto3's default session is not thread-safe to build clients from
            if self._client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                self._client = boto3.session.Session().client(
                    "s3", config=BotoConfig(signature_version="s3v4", retries={"max_attempts": 3})
                )
            return self._client

    def _put_sync(self, key: str, image: DecodedImage) -> str:
        s3 = self._s3()
        s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=image.data,
            ContentType=image.content_type,
            ServerSideEncryption="AES256",
            CacheControl="private, max-age=86400",
        )
        url: str = s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.ttl_s
        )
        return url

    async def put(self, request_id: str, index: int, image: DecodedImage, *, base_url: str) -> str:
        key = f"{_day_prefix(datetime.now(UTC))}{request_id}-{index}.{image.extension}"
        return await asyncio.to_thread(self._put_sync, key, image)


def signing_key(settings: Settings) -> bytes:
    """The local URL-signing key: HMAC-SHA256(JWT secret, fixed label), never the secret itself."""
    secret = resolve(settings.jwt_secret, settings.jwt_secret_arn) or settings.master_key
    if not secret:
        raise RuntimeError("JWT_SECRET (or AIGATEWAY_MASTER_KEY) is needed to sign local image URLs")
    return hmac.new(secret.encode(), b"aigateway/local-image-url/v1", hashlib.sha256).digest()


def sign(key: bytes, name: str, expires: int) -> str:
    return hmac.new(key, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()


def _forbidden() -> GatewayError:
    return GatewayError(
        AUTH_UNAUTHORIZED,
        403,
        "This image link is invalid or has expired.",
        "Generate the image again, or request a fresh link.",
    )


class LocalImageStore:
    SWEEP_EVERY_S = 600.0

    def __init__(self, folder: Path, key: bytes, ttl_s: int) -> None:
        self.folder = folder
        self.key = key
        self.ttl_s = ttl_s
        self._swept = 0.0

    def _write(self, name: str, data: bytes) -> None:
        write_private(self.folder / name, data)
        self._sweep()

    def _sweep(self) -> None:
        """Delete files every link to which has expired (at most every few minutes)."""
        now = time.time()
        if now - self._swept < self.SWEEP_EVERY_S:
            return
        self._swept = now
        for path in self.folder.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < now - self.ttl_s - 60:
                    path.unlink(missing_ok=True)
            except OSError:
                continue

    def signed_url(self, base_url: str, name: str, expires: int) -> str:
        query = urlencode({"expires": expires, "sig": sign(self.key, name, expires)})
        return f"{base_url.rstrip('/')}{FILES_PATH}{quote(name)}?{query}"

    async def put(self, request_id: str, index: int, image: DecodedImage, *, base_url: str) -> str:
        name = f"{request_id}-{index}.{image.extension}"
        await asyncio.to_thread(self._write, name, image.data)
        return self.signed_url(base_url, name, int(time.time()) + self.ttl_s)

    def open(self, name: str, expires: str | None, sig: str | None) -> tuple[Path, str, int]:
        """(path, content type, expires) of a signed, unexpired link; GatewayError 403/404 otherwise."""
        if not expires or not sig or not _SAFE_NAME.match(name) or not expires.isdigit():
            raise _forbidden()
        expected = sign(self.key, name, int(expires)).encode()
        if not hmac.compare_digest(expected, sig.lower().encode("utf-8", "replace")):
            raise _forbidden()
        if int(expires) < time.time():
            raise _forbidden()
        path = self.folder / name
        ctype = _TYPES.get(name.rsplit(".", 1)[-1].lower())
        if ctype is None or not path.is_file():
            raise not_found("The image no longer exists.")
        return path, ctype, int(expires)


def image_store(s: Settings) -> ImageStore:
    """The deployment's image store (`Services.images`): S3 when a bucket is configured, else the local folder."""
    if s.images_bucket:
        return S3ImageStore(s.images_bucket, s.images_url_ttl_s)
    return LocalImageStore(s.home / "images", signing_key(s), s.images_url_ttl_s)


def local_store(svc: Services) -> LocalImageStore | None:
    store = svc.images
    return store if isinstance(store, LocalImageStore) else None
