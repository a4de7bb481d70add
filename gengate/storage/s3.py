"""Storage in an S3 bucket (``GENGATE_STORAGE_URL=s3://bucket/prefix``), through aiobotocore.

Credentials and region come from the standard AWS variables (``AWS_ACCESS_KEY_ID``, ...), the endpoint
from ``GENGATE_S3_ENDPOINT_URL`` (any S3-compatible server; path-style addressing then). Writes stream:
a small object is one PUT, a larger one a multipart upload of ``part_size`` parts, completed only when
every byte arrived (readers see the whole object or none; a failed upload is aborted). Reads stream
ranged GETs. Each object carries its sha256 as user metadata, so ``stat`` is one HEAD. Clients never
see bucket URLs: gengate serves every object itself under its signed ``/files/...`` links.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from gengate.storage.base import CHUNK_SIZE, ObjectNotFound, StoredObject, validate_content_type, validate_key

# S3 refuses parts under 5 MiB (except the last); larger parts mean fewer requests, more memory per upload.
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, part_size: int = DEFAULT_PART_SIZE) -> None:
        if not bucket:
            raise ValueError("S3 storage needs a bucket: s3://bucket/prefix")
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.part_size = part_size
        self._client: Any = None
        self._stack = AsyncExitStack()
        self._lock = asyncio.Lock()

    def _name(self, key: str) -> str:
        key = validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    config = AioConfig(s3={"addressing_style": "path"} if self.endpoint_url else {},
                                       retries={"max_attempts": 3, "mode": "standard"},
                                       connect_timeout=10, read_timeout=60)
                    client = get_session().create_client("s3", endpoint_url=self.endpoint_url,
                                                         region_name=self.region, config=config)
                    self._client = await self._stack.enter_async_context(client)
        return self._client

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def put_stream(self, key: str, chunks: AsyncIterator[bytes], content_type: str) -> StoredObject:
        name = self._name(key)
        content_type = validate_content_type(content_type)
        s3 = await self._s3()
        digest = hashlib.sha256()
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        created = await s3.create_multipart_upload(Bucket=self.bucket, Key=name,
                                                                   ContentType=content_type)
                        upload_id = created["UploadId"]
                    part, buffer = bytes(buffer[:self.part_size]), buffer[self.part_size:]
                    parts.append(await self._part(s3, name, upload_id, len(parts) + 1, part))
            sha256 = digest.hexdigest()
            if upload_id is None:
                await s3.put_object(Bucket=self.bucket, Key=name, Body=bytes(buffer), ContentType=content_type,
                                    Metadata={"sha256": sha256})
            else:
                if buffer or not parts:
                    parts.append(await self._part(s3, name, upload_id, len(parts) + 1, bytes(buffer)))
                await s3.complete_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
                # Multipart metadata is fixed at creation, before the hash is known: copy it on.
                await s3.copy_object(Bucket=self.bucket, Key=name, CopySource={"Bucket": self.bucket, "Key": name},
                                     Metadata={"sha256": sha256}, MetadataDirective="REPLACE",
                                     ContentType=content_type)
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(s3, name, upload_id))
            raise
        return StoredObject(key=key, size=size, sha256=sha256, content_type=content_type)

    async def _part(self, s3: Any, name: str, upload_id: str, number: int, data: bytes) -> dict[str, Any]:
        reply = await s3.upload_part(Bucket=self.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data)
        return {"PartNumber": number, "ETag": reply["ETag"]}

    async def _abort(self, s3: Any, name: str, upload_id: str) -> None:
        try:
            await s3.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except ClientError:
            pass  # a bucket lifecycle rule cleans up what an abort could not

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(key, one(), content_type)

    async def stat(self, key: str) -> StoredObject | None:
        s3 = await self._s3()
        try:
            head = await s3.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        sha256 = (head.get("Metadata") or {}).get("sha256", "")
        return StoredObject(key, int(head["ContentLength"]), sha256,
                            head.get("ContentType") or "application/octet-stream")

    async def open_range(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        name = self._name(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range [{start}, {end})")
        s3 = await self._s3()
        if end is not None and end == start:
            if await self.stat(key) is None:
                raise ObjectNotFound(key)
            return
        extra = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            reply = await s3.get_object(Bucket=self.bucket, Key=name, **extra)
        except ClientError as exc:
            if _missing(exc):
                raise ObjectNotFound(key) from None
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return  # start at or past the end: nothing to send, like a slice
            raise
        body = reply["Body"]
        try:
            while True:
                chunk = await body.read(CHUNK_SIZE)
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        s3 = await self._s3()
        await s3.delete_object(Bucket=self.bucket, Key=self._name(key))
