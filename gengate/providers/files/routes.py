"""`/v1/files` in OpenAI's format (openai.md §6), answering in OpenAI's error envelope; `/content` of a
`file-extract` file is Kimi's JSON of the extracted text, of any other file its raw bytes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from gengate.core.errors import InvalidRequest, NotFound
from gengate.providers.files import store
from gengate.providers.files.schemas import (
    ExtractedFile,
    FileDeleted,
    FileList,
    FileListQuery,
    FileObject,
    FileUpload,
)
from gengate.providers.files.service import EXTRACT, FileService
from gengate.providers.openai.errors import openai_error
from gengate.providers.openai.schemas import OpenAIError
from gengate.storage.base import ObjectNotFound
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer

FAMILY = Family(name="openai_files", prefix="/v1/files", render_error=openai_error, error_model=OpenAIError,
                tag="files")
MAX_LIST = 10000


def _list_query(request: Request) -> tuple[str | None, int, bool, str | None]:
    q = request.query_params
    raw_limit = q.get("limit", str(MAX_LIST))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIST}", param="limit")
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'", param="order")
    return q.get("purpose") or None, int(raw_limit), order == "asc", q.get("after") or None


async def _closing(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()


def routes(ctx: AppContext) -> list[BaseRoute]:
    service = FileService(ctx)

    async def key_of(request: Request):
        return await ctx.authenticate(bearer(request))

    async def create(request: Request) -> Response:
        key = await key_of(request)
        row = await service.create(key, request)
        return JSONResponse(row.render())

    async def list_files(request: Request) -> Response:
        key = await key_of(request)
        purpose, limit, ascending, after = _list_query(request)
        rows, more = await ctx.db.run_read(lambda conn: store.page(conn, key.id, purpose=purpose, limit=limit,
                                                                    ascending=ascending, after=after))
        return JSONResponse({"object": "list", "data": [r.render() for r in rows], "has_more": more,
                             "first_id": rows[0].public_id if rows else None,
                             "last_id": rows[-1].public_id if rows else None})

    async def retrieve(request: Request) -> Response:
        key = await key_of(request)
        row = await service.get(key, request.path_params["file_id"])
        return JSONResponse(row.render())

    async def content(request: Request) -> Response:
        key = await key_of(request)
        row = await service.get(key, request.path_params["file_id"])
        if row.purpose == EXTRACT:
            if row.extract_key is None:
                raise InvalidRequest(f"File {row.public_id} could not be parsed: {row.status_details}",
                                     code="file_not_processed", param="id")
            chunks = ctx.storage.open_range(row.extract_key)
            media_type = "application/json"
        else:
            chunks = ctx.storage.open_range(row.storage_key)
            media_type = row.content_type
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            first = b""
        except ObjectNotFound:
            raise NotFound(f"No such File object: {row.public_id}", param="id") from None

        async def body() -> AsyncIterator[bytes]:
            yield first
            async for chunk in _closing(chunks):
                yield chunk

        headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
        if row.purpose != EXTRACT:
            headers["Content-Length"] = str(row.bytes)
            headers["Content-Disposition"] = "attachment"
        return StreamingResponse(body(), media_type=media_type, headers=headers)

    async def delete(request: Request) -> Response:
        key = await key_of(request)
        file_id = request.path_params["file_id"]
        await service.delete(key, file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": True})

    family_routes: list[BaseRoute] = [
        FAMILY.route("", create, ["POST"], summary="Upload a file", body=FileUpload,
                     body_media_type="multipart/form-data", reply=FileObject),
        FAMILY.route("", list_files, ["GET"], summary="List files", query=FileListQuery, reply=FileList),
        FAMILY.route("/{file_id}", retrieve, ["GET"], summary="Retrieve a file", reply=FileObject),
        FAMILY.route("/{file_id}", delete, ["DELETE"], summary="Delete a file", reply=FileDeleted),
        FAMILY.route("/{file_id}/content", content, ["GET"], summary="A file's content (raw bytes, or the "
                     "extracted text as JSON for purpose=file-extract)", reply=ExtractedFile),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
