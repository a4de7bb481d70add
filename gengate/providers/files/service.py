"""What the `/v1/files` routes do, apart from HTTP: accept an upload (limits, storage, extraction),
read, list and delete a key's files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import string
import tempfile
import time
from pathlib import Path

from starlette.requests import Request

from gengate.core.errors import BodyTooLarge, InvalidRequest, NotFound
from gengate.core.keys import ClientKey
from gengate.providers.files import store
from gengate.providers.files.extraction import Extracted, Extractor, file_type
from gengate.providers.files.store import FileRow
from gengate.providers.files.upload import Upload, file_chunks
from gengate.web.context import AppContext

PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals", "file-extract"})
EXTRACT = "file-extract"
_ID_ALPHABET = string.ascii_letters + string.digits
# A multipart body carries a little more than its file: boundaries, headers, the other fields.
_FORM_OVERHEAD = 1024 * 1024


def new_file_id() -> str:
    return "file-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def _check_fields(upload: Upload) -> None:
    purpose = upload.fields.get("purpose")
    if purpose is not None and purpose not in PURPOSES:
        raise InvalidRequest(f"'{purpose}' is not one of {sorted(PURPOSES)} - 'purpose'", param="purpose")


def _expiry(upload: Upload, created_at: float) -> float | None:
    anchor = upload.fields.get("expires_after[anchor]")
    seconds = upload.fields.get("expires_after[seconds]")
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequest("expires_after[anchor] must be 'created_at'", param="expires_after.anchor")
    if seconds is None or not seconds.isdigit() or not 3600 <= int(seconds) <= 2592000:
        raise InvalidRequest("expires_after[seconds] must be an integer from 3600 to 2592000",
                             param="expires_after.seconds")
    return created_at + int(seconds)


class FileService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        s = ctx.settings
        self.extractor = Extractor(timeout=s.extract_timeout, memory_mb=s.extract_memory_mb,
                                   max_chars=s.extract_max_chars, concurrency=s.extract_concurrency)
        self.tmp_dir = Path(s.data_dir) / "tmp" / "extract"

    async def create(self, key: ClientKey, request: Request) -> FileRow:
        s = self.ctx.settings
        count, used = await self.ctx.db.run_read(lambda conn: store.usage(conn, key.id))
        if count >= s.max_files_per_key:
            raise BodyTooLarge(f"You have reached the limit of {s.max_files_per_key} files for this key; "
                               "delete some files first.", code="file_count_limit_exceeded", param="file")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > s.max_file_bytes + _FORM_OVERHEAD:
            raise BodyTooLarge(f"The file is larger than the maximum of {s.max_file_bytes} bytes.",
                               code="file_too_large", param="file")
        room = s.max_file_storage_per_key - used
        if room < s.max_file_bytes:
            limit, too_large = max(room, 0), (f"The file does not fit in this key's storage quota of "
                                              f"{s.max_file_storage_per_key} bytes ({max(room, 0)} bytes left).")
        else:
            limit, too_large = s.max_file_bytes, f"The file is larger than the maximum of {s.max_file_bytes} bytes."

        public_id = new_file_id()
        created_at = time.time()
        storage_key = f"filesvc/{key.id}/{public_id}/data"
        upload = Upload()
        chunks = file_chunks(request, upload, limit, too_large, _check_fields)
        try:
            stored = await self.ctx.storage.put_stream(storage_key, chunks, "application/octet-stream")
        except BodyTooLarge as exc:
            code = "file_too_large" if limit == s.max_file_bytes else "storage_quota_exceeded"
            raise BodyTooLarge(exc.message, code=code, param="file") from None
        try:
            row = await self._finish(key, upload, public_id, storage_key, stored.size, created_at)
        except BaseException:
            await self._forget(storage_key, None)
            raise
        return row

    async def _finish(self, key: ClientKey, upload: Upload, public_id: str, storage_key: str, size: int,
                      created_at: float) -> FileRow:
        if not upload.seen_file:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        purpose = upload.fields.get("purpose")
        if not purpose:
            raise InvalidRequest("Missing required parameter: 'purpose'.", param="purpose")
        _check_fields(upload)
        expires_at = _expiry(upload, created_at)
        filename = (upload.filename or "").replace("\\", "/").rpartition("/")[2].strip() or "upload"
        kind, mime = file_type(filename, upload.content_type)
        status, details, extract_key = "processed", None, None
        if purpose == EXTRACT:
            extracted = (Extracted(False, reason=f"unsupported file type {mime!r} ({filename})") if kind is None
                         else await self._extract(storage_key, kind))
            if extracted.ok:
                extract_key = f"filesvc/{key.id}/{public_id}/extract.json"
                body = {"content": extracted.content, "file_type": mime, "filename": filename,
                        "title": extracted.title, "type": "file"}
                await self.ctx.storage.put_bytes(extract_key, json.dumps(body, ensure_ascii=False).encode(),
                                                 "application/json")
            else:
                status, details = "error", extracted.reason
        row = FileRow(id=0, public_id=public_id, key_id=key.id, filename=filename[:1000], purpose=purpose,
                      bytes=size, content_type=mime[:100], storage_key=storage_key, extract_key=extract_key,
                      status=status, status_details=details, created_at=created_at, expires_at=expires_at)
        try:
            async with self.ctx.db.write() as conn:
                await store.add(conn, row)
        except BaseException:
            await self._forget(None, extract_key)
            raise
        return row

    async def _extract(self, storage_key: str, kind: str) -> Extracted:
        """Copy the stored bytes to a private temporary file (storage may be S3) and parse it there."""
        await asyncio.to_thread(self.tmp_dir.mkdir, parents=True, exist_ok=True)
        fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=self.tmp_dir, suffix="." + kind)
        try:
            f = await asyncio.to_thread(os.fdopen, fd, "wb")
            try:
                async for chunk in self.ctx.storage.open_range(storage_key):
                    await asyncio.to_thread(f.write, chunk)
            finally:
                f.close()
            return await self.extractor.extract(Path(name), kind)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)  # synchronous on purpose: it must run even when the request is cancelled

    async def _forget(self, storage_key: str | None, extract_key: str | None) -> None:
        for k in (storage_key, extract_key):
            if k:
                await self.ctx.storage.delete(k)

    async def get(self, key: ClientKey, file_id: str) -> FileRow:
        row = await self.ctx.db.run_read(lambda conn: store.get(conn, key.id, file_id))
        if row is None:
            raise NotFound(f"No such File object: {file_id}", param="id")
        return row

    async def delete(self, key: ClientKey, file_id: str) -> None:
        row = await self.get(key, file_id)
        async with self.ctx.db.write() as conn:
            if not await store.remove(conn, key.id, file_id):
                raise NotFound(f"No such File object: {file_id}", param="id")
        await self._forget(row.storage_key, row.extract_key)
