"""Runway routes under `/runway/v1` (runway.md §2): the `runwayml` SDK works with
`base_url="http://HOST/runway"`. Auth: `Bearer sk-...`; `X-Runway-Version` is accepted and ignored
(the channel's version goes upstream)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from gengate.core.adaptor import TaskAdaptor
from gengate.core.keys import ClientKey
from gengate.providers.runway import organization as org
from gengate.providers.runway import uploads
from gengate.providers.runway.adaptor import ActionAdaptor, RunwayAdaptor
from gengate.providers.runway.errors import runway_error
from gengate.providers.runway.schemas import (
    RunwayCreated,
    RunwayError,
    RunwayImageToVideo,
    RunwayImageUpscale,
    RunwayOrganization,
    RunwayTask,
    RunwayTextToImage,
    RunwayTextToVideo,
    RunwayUploadStart,
    RunwayUploadStarted,
    RunwayUsage,
    RunwayUsageQuery,
    RunwayVideoToVideo,
    RunwayVideoUpscale,
)
from gengate.providers.runway.schemas_more import BODIES
from gengate.providers.runway.uploads import Uploads
from gengate.web.context import AppContext
from gengate.web.family import Family, Handler
from gengate.web.requests import bearer, read_json
from gengate.web.tasks import create_task, read_task

FAMILY = Family(name="runway", prefix="/runway", render_error=runway_error, error_model=RunwayError)
# The upload form is posted without a client key (its signed fields are the credential).
FORM = Family(name="runway", prefix="/runway", render_error=runway_error, error_model=RunwayError, auth=False)


def routes(ctx: AppContext) -> list[BaseRoute]:
    adaptor = ctx.adaptors["runway"]
    assert isinstance(adaptor, RunwayAdaptor)

    async def key_of(request: Request) -> ClientKey:
        return await ctx.authenticate(bearer(request))

    url_ttl = int(ctx.settings.deadline_for("runway")) + 3600  # an upload's URL outlives a queued task

    def creator(action: str) -> Handler:
        async def create(request: Request) -> Response:
            key = await key_of(request)
            own = Uploads(ctx.storage, ctx.signer, key.id, url_ttl)
            fixed = cast(TaskAdaptor, ActionAdaptor(adaptor, action, own))
            view = await create_task(ctx, request, key, fixed, route=f"runway:/runway/v1/{action}",
                                     body_limit=ctx.settings.max_media_body_bytes)
            return JSONResponse(adaptor.render_created(view))

        create.__name__ = action
        return create

    async def get(request: Request) -> Response:
        key = await key_of(request)
        view = await read_task(ctx, key, request.path_params["task_id"], "runway")
        return JSONResponse(adaptor.render(view))

    async def delete(request: Request) -> Response:
        """Cancels a live task, deletes an ended one; either way it is 404 afterwards."""
        key = await key_of(request)
        await ctx.engine.delete(key, request.path_params["task_id"], "runway")
        return Response(status_code=204)

    async def organization(request: Request) -> Response:
        key = await key_of(request)
        async with ctx.db.read() as conn:
            return JSONResponse(await org.organization(conn, key))

    async def usage(request: Request) -> Response:
        """The key's credits per day and model; the body (`startDate`, `beforeDate`) may be empty."""
        key = await key_of(request)
        empty = request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers
        body = None if empty else await read_json(request, ctx.settings.max_body_bytes)
        start, before = org.usage_window(body, datetime.now(UTC).date())
        async with ctx.db.read() as conn:
            return JSONResponse(await org.usage(conn, key, start, before))

    async def start_upload(request: Request) -> Response:
        """Step 1 of `uploads.create_ephemeral`: where and with which signed fields to post the file."""
        key = await key_of(request)
        body = await read_json(request, ctx.settings.max_body_bytes)
        return JSONResponse(uploads.start(ctx.signer, key.id, body))

    async def receive_upload(request: Request) -> Response:
        """Step 2: the file, posted with the signed fields and no Authorization (as to S3)."""
        await uploads.receive(request, ctx.storage, ctx.signer, ctx.settings.max_file_bytes)
        return Response(status_code=204)

    family_routes: list[BaseRoute] = [
        FAMILY.route("/v1/uploads", start_upload, ["POST"], name="uploads",
                     summary="Start an ephemeral upload (runwayml's uploads.create_ephemeral)", body=RunwayUploadStart,
                     reply=RunwayUploadStarted),
        FORM.route("/v1/uploads/form", receive_upload, ["POST"], name="uploads_form",
                     summary="Receive an upload's file (signed form fields, no Authorization)",
                     body_media_type="multipart/form-data"),
        FAMILY.route("/v1/image_to_video", creator("image_to_video"), ["POST"], name="image_to_video",
                     summary="Animate an image into a video", body=RunwayImageToVideo, reply=RunwayCreated),
        FAMILY.route("/v1/text_to_image", creator("text_to_image"), ["POST"], name="text_to_image",
                     summary="Generate an image from text", body=RunwayTextToImage, reply=RunwayCreated),
        FAMILY.route("/v1/text_to_video", creator("text_to_video"), ["POST"], name="text_to_video",
                     summary="Generate a video from text", body=RunwayTextToVideo, reply=RunwayCreated),
        FAMILY.route("/v1/image_upscale", creator("image_upscale"), ["POST"], name="image_upscale",
                     summary="Upscale an image", body=RunwayImageUpscale, reply=RunwayCreated),
        FAMILY.route("/v1/video_upscale", creator("video_upscale"), ["POST"], name="video_upscale",
                     summary="Upscale a video or raise its frame rate", body=RunwayVideoUpscale, reply=RunwayCreated),
        FAMILY.route("/v1/video_to_video", creator("video_to_video"), ["POST"], name="video_to_video",
                     summary="Edit a video as a text says", body=RunwayVideoToVideo, reply=RunwayCreated),
        *(FAMILY.route(f"/v1/{action}", creator(action), ["POST"], name=action, summary=summary, body=body,
                       reply=RunwayCreated) for action, (body, summary) in BODIES.items()),
        FAMILY.route("/v1/tasks/{task_id}", get, ["GET"], name="get_task", summary="Read a task", reply=RunwayTask),
        FAMILY.route("/v1/tasks/{task_id}", delete, ["DELETE"], name="delete_task",
                     summary="Cancel a live task or delete an ended one"),
        FAMILY.route("/v1/organization", organization, ["GET"], name="organization",
                     summary="The calling key's balance and usage, as Runway's organization", reply=RunwayOrganization),
        FAMILY.route("/v1/organization/usage", usage, ["POST"], name="organization_usage",
                     summary="The calling key's credits per day and model", body=RunwayUsageQuery, reply=RunwayUsage),
    ]
    return [*family_routes, FAMILY.fallback(family_routes)]
