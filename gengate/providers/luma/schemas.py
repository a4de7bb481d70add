"""Luma Dream Machine bodies as models (luma.md §3-§4, §7), for the OpenAPI document only: the adaptor
reads and validates requests itself. Objects allow unknown keys, as Luma's replies do."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AspectRatio = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class LumaKeyframe(_Open):
    """`{"type": "image", "url"}` or `{"type": "generation", "id"}` (a completed video of the same key:
    as `frame0` it is extended, as `frame1` reverse-extended)."""

    type: Literal["image", "generation"]
    url: str | None = None
    id: str | None = None


class LumaKeyframes(_Open):
    frame0: LumaKeyframe | None = None
    frame1: LumaKeyframe | None = None


class LumaConcept(_Open):
    key: str = Field(examples=["dolly_zoom"])


class LumaVideoRequest(_Open):
    """`POST /generations/video` (and `POST /generations`, where `model` may be left out: ray-2)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "ray-2", "prompt": "a lighthouse at dusk", "aspect_ratio": "16:9", "duration": "5s",
         "resolution": "720p"},
    ]})

    model: str = Field(examples=["ray-2", "ray-flash-2"])
    prompt: str | None = None
    aspect_ratio: AspectRatio | None = None
    loop: bool | None = None
    duration: Literal["5s", "9s"] | None = None
    resolution: Literal["540p", "720p", "1080p", "4k"] | None = None
    keyframes: LumaKeyframes | None = None
    concepts: list[LumaConcept] | None = None
    generation_type: Literal["video"] | None = None
    callback_url: str | None = Field(default=None, description="gengate POSTs the generation here on every "
                                                               "change (signed); not forwarded upstream")


class LumaRef(_Open):
    url: str
    weight: float | None = None


class LumaIdentity(_Open):
    images: list[str]


class LumaCharacterRef(_Open):
    identity0: LumaIdentity | None = None


class LumaImageRequest(_Open):
    """`POST /generations/image`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "photon-1", "prompt": "a red kite over the sea", "aspect_ratio": "1:1"},
    ]})

    model: str = Field(examples=["photon-1", "photon-flash-1"])
    prompt: str
    aspect_ratio: AspectRatio | None = None
    format: Literal["jpg", "png"] | None = None
    image_ref: list[LumaRef] | None = None
    style_ref: list[LumaRef] | None = None
    character_ref: LumaCharacterRef | None = None
    modify_image_ref: LumaRef | None = None
    sync: bool | None = Field(default=None, description="answer once the image is done (or sync_timeout passed)")
    sync_timeout: float | None = None
    generation_type: Literal["image"] | None = None
    callback_url: str | None = None


class LumaAssets(_Open):
    video: str | None = None
    image: str | None = None
    progress_video: str | None = None


class LumaGeneration(_Open):
    """The Generation object: create answers 201 with it, GET 200."""

    id: str = Field(examples=["4f6a2d0e-8b3c-4c1e-9d57-1a2b3c4d5e6f"])
    generation_type: Literal["video", "image"]
    state: Literal["queued", "dreaming", "completed", "failed"]
    failure_reason: str | None = None
    created_at: str = Field(examples=["2025-04-12T10:21:33.518204Z"])
    model: str
    assets: LumaAssets | None = None
    request: dict[str, object]


class LumaListQuery(BaseModel):
    limit: int | None = Field(default=None, ge=1, le=100)
    offset: int | None = Field(default=None, ge=0)


class LumaGenerationList(_Open):
    generations: list[LumaGeneration]
    has_more: bool
    count: int
    limit: int
    offset: int


class LumaPing(_Open):
    message: str = Field(examples=["pong"])


class LumaError(BaseModel):
    """FastAPI's `{"detail": "..."}`."""

    detail: str
