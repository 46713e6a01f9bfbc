"""Renditions in S3-compatible object storage (AWS S3, MinIO, Ceph RGW, SeaweedFS).

`MEDIA_STORAGE_URL=s3://bucket/prefix` selects it; `MEDIA_S3_ENDPOINT_URL` names a store other
than AWS, and the credentials come from the standard AWS variables (or an instance role).
Writes are multipart uploads fed part by part from the chunks, so memory holds one part whatever
the file size; a write that fails aborts its upload, and `natomedia media gc` aborts those a
killed process left behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from services.media.storage import (
    CHUNK_SIZE,
    PendingUpload,
    StorageKeyError,
    StorageUnavailable,
    StoredObject,
    check_key,
)

logger = logging.getLogger("natomedia.media.storage")

# S3 wants parts of at least 5 MiB (the last excepted) and at most 10,000 of them: 16 MiB parts
# reach 160 GB, and one part is what a write holds in memory.
PART_SIZE = 16 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


class StorageURLError(ValueError):
    """`MEDIA_STORAGE_URL` is not `s3://bucket[/prefix]`."""


def parse_storage_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise StorageURLError(f"MEDIA_STORAGE_URL must look like s3://bucket/prefix, not {url!r}")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except StorageKeyError as exc:
            raise StorageURLError(f"MEDIA_STORAGE_URL has a bad prefix: {url!r}") from exc
    return parts.netloc, f"{prefix}/" if prefix else ""


def _error_code(exc: ClientError) -> str:
    error: dict[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def _unavailable(exc: BaseException, action: str) -> StorageUnavailable:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return StorageUnavailable(f"object storage unavailable ({action}): {detail}")


class S3Storage:
    """One bucket and key prefix; the client is made on first use, in the running event loop."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        part_size: int = PART_SIZE,
        connect_timeout: float = 3.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.region = (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        ) or "us-east-1"
        self._credentials = {
            key: value
            for key, value in (
                ("aws_access_key_id", access_key_id),
                ("aws_secret_access_key", secret_access_key),
            )
            if value
        }
        self.part_size = part_size
        self._config = Config(
            signature_version="s3v4",
            # Path-style works with every S3-compatible store; AWS still answers it.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # Checksums only where S3 requires them: we hash every file ourselves, and not
            # every compatible store understands the newer default trailers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Storage:
        bucket, prefix = parse_storage_url(url)
        return cls(bucket, prefix, **options)

    def object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    stack = contextlib.AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        get_session().create_client(
                            "s3",
                            endpoint_url=self.endpoint_url,
                            region_name=self.region,
                            config=self._config,
                            **self._credentials,
                        )
                    )
                    self._stack = stack
        return self._client

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    async def _call(self, action: str, **params: Any) -> Any:
        client = await self.client()
        try:
            return await getattr(client, action)(Bucket=self.bucket, **params)
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                raise FileNotFoundError(params.get("Key", self.bucket)) from exc
            raise _unavailable(exc, action) from exc
        except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _unavailable(exc, action) from exc

    async def write(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> int:
        name = self.object_key(key)
        headers: dict[str, str] = {}
        if content_type:
            headers["ContentType"] = content_type
        if content_disposition:
            headers["ContentDisposition"] = content_disposition
        buffer = bytearray()
        written = 0
        iterator = aiter(chunks)

        async def read_more() -> bool:
            """The next chunk into the buffer; False once the source has ended."""
            nonlocal written
            try:
                chunk = await anext(iterator)
            except StopAsyncIteration:
                return False
            buffer.extend(chunk)
            written += len(chunk)
            return True

        ended = False
        # Up to one part first: a file smaller than that is a single PUT.
        while len(buffer) < self.part_size and not ended:
            ended = not await read_more()
        if ended:
            body = bytes(buffer)
            await self._call(
                "put_object",
                Key=name,
                Body=body,
                # The store checks what it received against this before keeping it.
                ChecksumSHA256=_sha256_base64(body),
                **headers,
            )
            return written
        # Each part carries its SHA-256, which the store checks before keeping it; the object
        # then holds the checksum of its parts (the file's own SHA-256 is in the catalogue).
        upload = await self._call(
            "create_multipart_upload", Key=name, ChecksumAlgorithm="SHA256", **headers
        )
        upload_id: str = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            while True:
                while len(buffer) >= self.part_size or (ended and buffer):
                    part = bytes(buffer[: self.part_size])
                    del buffer[: self.part_size]
                    checksum = _sha256_base64(part)
                    answer = await self._call(
                        "upload_part",
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        Body=part,
                        ChecksumSHA256=checksum,
                    )
                    parts.append(
                        {
                            "ETag": answer["ETag"],
                            "PartNumber": len(parts) + 1,
                            "ChecksumSHA256": checksum,
                        }
                    )
                if ended:
                    break
                ended = not await read_more()
            await self._call(
                "complete_multipart_upload",
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Shielded: a cancelled ingest still frees the parts it stored.
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    self._call("abort_multipart_upload", Key=name, UploadId=upload_id)
                )
            raise
        return written

    async def read(
        self, key: str, start: int = 0, end: int | None = None, *, chunk_size: int = CHUNK_SIZE
    ) -> AsyncIterator[bytes]:
        params: dict[str, Any] = {"Key": self.object_key(key)}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        answer = await self._call("get_object", **params)
        body = answer["Body"]
        pending = bytearray()
        try:
            async with body:
                async for piece in body.iter_chunks(chunk_size):
                    pending += piece
                    while len(pending) >= chunk_size:
                        yield bytes(pending[:chunk_size])
                        del pending[:chunk_size]
        except (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _unavailable(exc, "get_object") from exc
        if pending:
            yield bytes(pending)

    async def size(self, key: str) -> int | None:
        try:
            answer = await self._call("head_object", Key=self.object_key(key))
        except FileNotFoundError:
            return None
        return int(answer["ContentLength"])

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await self._call("delete_object", Key=self.object_key(key))

    async def presign_get(
        self,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        content_disposition: str | None = None,
    ) -> str | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        # The store answers with these instead of what it kept: a title edited since the
        # upload still names the file.
        if content_type:
            params["ResponseContentType"] = content_type
        if content_disposition:
            params["ResponseContentDisposition"] = content_disposition
        client = await self.client()
        url: str = await client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_in
        )
        return url

    async def objects(self) -> AsyncIterator[StoredObject]:
        client = await self.client()
        paginator = client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    yield StoredObject(key, int(item["Size"]), _aware(item["LastModified"]))
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise _unavailable(exc, "list_objects_v2") from exc

    async def pending_uploads(self) -> AsyncIterator[PendingUpload]:
        client = await self.client()
        paginator = client.get_paginator("list_multipart_uploads")
        try:
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for item in page.get("Uploads", []) or []:
                    key = str(item["Key"])[len(self.prefix) :]
                    yield PendingUpload(key, str(item["UploadId"]), _aware(item["Initiated"]))
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise _unavailable(exc, "list_multipart_uploads") from exc

    async def abort_upload(self, upload: PendingUpload) -> None:
        with contextlib.suppress(FileNotFoundError):
            await self._call(
                "abort_multipart_upload",
                Key=self.object_key(upload.key),
                UploadId=upload.upload_id,
            )

    async def ensure_bucket(self) -> None:
        """Create the bucket when it is missing (development stores and tests)."""
        try:
            await self._call("head_bucket")
        except FileNotFoundError:
            await self._call("create_bucket")


def _sha256_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _aware(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
