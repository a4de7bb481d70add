"""`/v1/videos` in OpenAI's video-object shape (openai.md §8), routed by `model` to any video provider.

create (multipart as the `openai` SDK sends it, or JSON), retrieve, list (cursor), delete and
`content` (the MP4, or `variant=thumbnail` where the provider gives a still). The task is the
provider's own; it was created through this view (`origin`), so it renders as a video object here, in
its webhooks and in the unified task API's `GET`. Errors use OpenAI's envelope; bad input is 400.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from gengate.core import tasks as store
from gengate.core.adaptor import Prepared, Resolver, TaskAdaptor, TaskView
from gengate.core.errors import BodyTooLarge, ClientGone, InvalidRequest, ModelNotAllowed, NotFound
from gengate.core.keys import ClientKey
from gengate.core.states import TaskState
from gengate.providers.openai.errors import openai_error
from gengate.providers.openai.schemas import OpenAIError
from gengate.providers.videos import schemas as s
from gengate.providers.videos.adaptor import ORIGIN, REQUEST_KEY, VIEWS, route_of
from gengate.providers.videos.table import MODELS, Route, VideoModel
from gengate.providers.videos.translate import check_image, fill, image_data_url, pick_call, read_request
from gengate.storage.routes import RangeNotSatisfiable, parse_range
from gengate.web.context import AppContext
from gengate.web.family import Family
from gengate.web.requests import bearer, read_json
from gengate.web.tasks import create_task, read_task

FAMILY = Family(name="videos", prefix="/v1/videos", render_error=openai_error, error_model=OpenAIError)
VIEW = VIEWS[ORIGIN]
FIELDS = ("prompt", "model", "seconds", "size")
VARIANTS = ("video", "thumbnail", "spritesheet")


class VideoCreate:
    """The provider adaptor that serves the model, preparing the provider-native body that the
    table's route builds from the OpenAI request: what `create_task` saves and submits."""

    def __init__(self, ctx: AppContext, entry: VideoModel, route: Route, adaptor: TaskAdaptor) -> None:
        self._ctx, self._entry, self._route, self._adaptor = ctx, entry, route, adaptor

    async def prepare(self, body: Any, resolver: Resolver) -> Prepared:
        req = read_request(body, self._entry)
        call = pick_call(self._route, req)
        native = await fill(call.body, req, self._route, self._host_image)
        prepare_action = getattr(self._adaptor, "prepare_action", None)
        if call.action is None or prepare_action is None:
            prepared = await self._adaptor.prepare(native, resolver)
        else:
            prepared = await prepare_action(call.action, native, resolver)
        prepared.model = req.model  # the task shows the model the client sent
        prepared.request[REQUEST_KEY] = {"prompt": req.prompt, "seconds": req.seconds, "size": req.size,
                                         "asked_seconds": req.asked_seconds, "image": req.image is not None}
        prepared.callback_url = body.get("callback_url") if isinstance(body.get("callback_url"), str) else None
        return prepared

    async def _host_image(self, data_url: str) -> str:
        """An uploaded image as a URL a provider can fetch: stored by gengate, signed for a day."""
        head, _, b64 = data_url.partition(",")
        data = base64.b64decode(b64)
        kind = head.removeprefix("data:").split(";")[0] or "image/png"
        key = f"videos/inputs/{hashlib.sha256(data).hexdigest()}.{kind.split('/')[-1]}"
        if await self._ctx.storage.stat(key) is None:
            await self._ctx.storage.put_bytes(key, data, kind)
        return self._ctx.signer.url_for(key, 24 * 3600)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._adaptor, name)


def routes(ctx: AppContext) -> list[BaseRoute]:
    async def key_of(request: Request) -> ClientKey:
        return await ctx.authenticate(bearer(request))

    async def own(key: ClientKey, video_id: str) -> TaskView:
        view = await read_task(ctx, key, video_id, None)
        if view.origin != ORIGIN:
            raise NotFound(f"No video found with id '{video_id}'.")
        return view

    def serving(entry: VideoModel) -> Route:
        """The first route whose provider has an enabled channel with a live secret for the model; else
        the first with any channel (its task waits for one); else the model is not served."""
        routes = [r for r in entry.routes if r.provider in ctx.adaptors
                  and ctx.router.has_channel(r.provider, entry.name)]
        live = next((r for r in routes if ctx.router.candidates(r.provider, entry.name)), None)
        if live is not None or routes:
            return live or routes[0]
        raise ModelNotAllowed(f"The model `{entry.name}` is not served by any channel.")

    async def create(request: Request) -> Response:
        key = await key_of(request)
        body = await read_body(request, ctx.settings.max_media_body_bytes)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest("model is required: one of " + ", ".join(sorted(MODELS)), param="model",
                                 code="missing_required_parameter")
        entry = MODELS.get(model)
        if entry is None:
            raise ModelNotAllowed(f"The model `{model}` does not exist or you do not have access to it.")
        key.check_model(model)
        route = serving(entry)
        adaptor = VideoCreate(ctx, entry, route, ctx.adaptors[route.provider])
        view = await create_task(ctx, request, key, adaptor, route="videos:/v1/videos",  # type: ignore[arg-type]
                                 body=body, origin=ORIGIN)
        return JSONResponse(VIEW.render(view))

    async def retrieve(request: Request) -> Response:
        key = await key_of(request)
        return JSONResponse(VIEW.render(await own(key, request.path_params["video_id"])))

    async def list_videos(request: Request) -> Response:
        key = await key_of(request)
        q = request.query_params
        limit = _int(q.get("limit"), "limit", 20, 1, 100)
        order = q.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise InvalidRequest("order must be asc or desc", param="order")
        after = q.get("after") or None
        views = await ctx.engine.list_owned(key, origin=ORIGIN, limit=limit + 1, after=after,
                                            oldest_first=order == "asc")
        data = [VIEW.render(v) for v in views[:limit]]
        return JSONResponse({"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                             "last_id": data[-1]["id"] if data else None, "has_more": len(views) > limit})

    async def delete(request: Request) -> Response:
        key = await key_of(request)
        video_id = request.path_params["video_id"]
        await own(key, video_id)
        row = await ctx.engine.delete(key, video_id)
        return JSONResponse({"id": row.public_id, "object": "video.deleted", "deleted": True})

    async def content(request: Request) -> Response:
        key = await key_of(request)
        video_id = request.path_params["video_id"]
        variant = request.query_params.get("variant") or "video"
        if variant not in VARIANTS:
            raise InvalidRequest("variant must be video, thumbnail or spritesheet", param="variant")
        view = await own(key, video_id)
        if view.state is not TaskState.SUCCEEDED:
            raise NotFound(f"Video '{video_id}' is {VIEW.render(view)['status']}: its content is available "
                           "once it is completed.", code="video_not_ready")
        storage_key = await _asset(ctx, key, video_id, variant, route_of(view))
        return await _stream(ctx, request, storage_key)

    family_routes: list[BaseRoute] = [
        FAMILY.route("", create, ["POST"], summary="Create a video", body=s.VideoCreateForm,
                     body_media_type="multipart/form-data", reply=s.Video),
        FAMILY.route("", list_videos, ["GET"], summary="List videos, newest first", query=s.VideoListQuery,
                     reply=s.VideoList),
        FAMILY.route("/{video_id}", retrieve, ["GET"], summary="Retrieve a video", reply=s.Video),
        FAMILY.route("/{video_id}", delete, ["DELETE"], summary="Delete a video", reply=s.VideoDeleted),
        FAMILY.route("/{video_id}/content", content, ["GET"], summary="Download the video (or its thumbnail)",
                     query=s.ContentQuery, reply_media_type="video/mp4"),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]


async def _asset(ctx: AppContext, key: ClientKey, video_id: str, variant: str, route: Route | None) -> str:
    """The storage key of the variant's file: the route's video or thumbnail field of the first output."""
    row = await ctx.engine.owned(key, video_id)
    async with ctx.db.read() as conn:
        outs = await store.outputs_of(conn, row.id)
    files: dict[str, str] = json.loads(outs[0].files) if outs else {}
    if variant == "video":
        wanted = route.video_fields if route else ()
        found = next((files[f] for f in wanted if f in files), None) or next(iter(files.values()), None)
    elif variant == "thumbnail":
        found = next((files[f] for f in (route.thumbnail_fields if route else ()) if f in files), None)
    else:
        found = None
    if found is None:
        raise NotFound(f"This video has no {variant} to download.", code="not_found")
    return found


async def _stream(ctx: AppContext, request: Request, storage_key: str) -> Response:
    stored = await ctx.storage.stat(storage_key)
    if stored is None:
        raise NotFound("The video's content is no longer stored.")
    headers = {"Content-Type": stored.content_type, "Accept-Ranges": "bytes", "ETag": f'"{stored.sha256}"',
               "X-Content-Type-Options": "nosniff"}
    status, start, end = 200, 0, stored.size
    header = request.headers.get("range")
    if header is not None:
        try:
            span = parse_range(header, stored.size)
        except RangeNotSatisfiable:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{stored.size}"})
        if span is not None:
            status, (start, end) = 206, span
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{stored.size}"
    headers["Content-Length"] = str(end - start)
    return StreamingResponse(ctx.storage.open_range(storage_key, start, end), status_code=status, headers=headers)


# ---------------------------------------------------------------- reading the create body
async def read_body(request: Request, limit: int) -> dict[str, Any]:
    """The create's fields from multipart/form-data (what the SDK sends), a urlencoded form or JSON,
    with `input_reference` as a data URL (an uploaded file) or the URL given as `image_url`."""
    ctype = request.headers.get("content-type", "").lower()
    if ctype.startswith("multipart/form-data") or ctype.startswith("application/x-www-form-urlencoded"):
        form = await _parse_form(request, limit, multipart=ctype.startswith("multipart/"))
        body: dict[str, Any] = {}
        for name in (*FIELDS, "callback_url"):
            value = form.get(name)
            if isinstance(value, UploadFile):
                raise InvalidRequest(f"{name} must be a form field, not a file", param=name)
            if value is not None:
                body[name] = value
        upload = form.get("input_reference")
        if isinstance(upload, UploadFile):
            body["input_reference"] = image_data_url(await upload.read())
        else:
            ref = {k[len("input_reference["):-1]: v for k, v in form.multi_items()
                   if k.startswith("input_reference[") and k.endswith("]") and isinstance(v, str)}
            if upload is not None:
                ref = _reference_text(upload)
            body.update(_reference(ref))
        return body
    raw = await read_json(request, limit)
    if not isinstance(raw, dict):
        raise InvalidRequest("the request body must be a JSON object or multipart/form-data")
    body = {k: raw[k] for k in (*FIELDS, "callback_url") if k in raw}
    if raw.get("input_reference") is not None:
        ref = raw["input_reference"]
        if isinstance(ref, str):
            ref = _reference_text(ref)
        if not isinstance(ref, dict):
            raise InvalidRequest("input_reference must be {\"image_url\": ...}", param="input_reference")
        body.update(_reference(ref))
    for name in FIELDS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            raise InvalidRequest(f"{name} must be a string", param=name)
    return body


def _reference_text(text: str) -> dict[str, Any]:
    """input_reference sent as text: JSON `{"image_url": ...}`, or the URL itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return {"image_url": text}
    return value if isinstance(value, dict) else {"image_url": text}


def _reference(ref: dict[str, Any]) -> dict[str, Any]:
    if not ref:
        return {}
    if ref.get("image_url"):
        url = ref["image_url"]
        if not isinstance(url, str):
            raise InvalidRequest("input_reference.image_url must be a string", param="input_reference")
        return {"input_reference": check_image(url)}
    if ref.get("file_id"):
        raise InvalidRequest("input_reference.file_id is not supported here: upload the image, or give "
                             "image_url", param="input_reference")
    raise InvalidRequest("input_reference must be an image file or {image_url}", param="input_reference")


async def _parse_form(request: Request, limit: int, *, multipart: bool) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body larger than {limit} bytes")

    async def bounded() -> AsyncGenerator[bytes, None]:
        size = 0
        async for chunk in _chunks(request):
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"request body larger than {limit} bytes")
            yield chunk

    try:
        if multipart:
            return await MultiPartParser(request.headers, bounded(), max_files=1, max_fields=32,
                                         max_part_size=limit).parse()
        return await FormParser(request.headers, bounded(), max_fields=32, max_part_size=limit).parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"the multipart body cannot be read: {exc.message}") from None
    except UnicodeDecodeError:
        raise InvalidRequest("a form field is not valid UTF-8") from None


async def _chunks(request: Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise ClientGone("the client closed the connection") from None


def _int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}", param=name)
    return int(raw)
