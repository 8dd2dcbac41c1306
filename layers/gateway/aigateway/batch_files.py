"""The bytes of uploaded batch input files: the images bucket on AWS, a private local folder otherwise.

Who owns a file is a database row (store/batches.py `batch_files`); here are only its bytes,
under `batch-files/<file id>.jsonl` in the bucket (SSE-S3, private) or `$AIGATEWAY_HOME/batch-files/`.
A batch's output and error files are not stored: they are rendered from its items when read
(api/batch_shapes.py), so they can never disagree with the results the native routes show.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Protocol

from .private_files import write_private
from .settings import Settings

PREFIX = "batch-files/"


class FileStore(Protocol):
    async def put(self, file_id: str, data: bytes) -> None: ...
    async def get(self, file_id: str) -> bytes | None: ...
    async def delete(self, file_id: str) -> None: ...


class LocalFileStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, file_id: str) -> Path:
        return self.folder / f"{file_id}.jsonl"

    async def put(self, file_id: str, data: bytes) -> None:
        await asyncio.to_thread(write_private, self._path(file_id), data)

    async def get(self, file_id: str) -> bytes | None:
        path = self._path(file_id)
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(self._path(file_id).unlink, missing_ok=True)


class S3FileStore:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self._client: Any = None
        self._lock = threading.Lock()

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3

                self._client = boto3.session.Session().client("s3")
            return self._client

    async def put(self, file_id: str, data: bytes) -> None:
        await asyncio.to_thread(
            self._s3().put_object,
            Bucket=self.bucket,
            Key=f"{PREFIX}{file_id}.jsonl",
            Body=data,
            ContentType="application/jsonl",
            ServerSideEncryption="AES256",
        )

    def _get_sync(self, file_id: str) -> bytes | None:
        s3 = self._s3()
        try:
            obj = s3.get_object(Bucket=self.bucket, Key=f"{PREFIX}{file_id}.jsonl")
        except s3.exceptions.NoSuchKey:
            return None
        data: bytes = obj["Body"].read()
        return data

    async def get(self, file_id: str) -> bytes | None:
        return await asyncio.to_thread(self._get_sync, file_id)

    async def delete(self, file_id: str) -> None:
        await asyncio.to_thread(self._s3().delete_object, Bucket=self.bucket, Key=f"{PREFIX}{file_id}.jsonl")


def file_store(settings: Settings) -> FileStore:
    if settings.images_bucket:
        return S3FileStore(settings.images_bucket)
    return LocalFileStore(settings.home / "batch-files")
