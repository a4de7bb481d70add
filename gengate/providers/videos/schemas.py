"""`/v1/videos` bodies as models (openai.md §8), for the OpenAPI document only: the routes read and
check requests themselves."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class VideoCreateForm(BaseModel):
    """multipart/form-data, as the `openai` SDK sends it (JSON is accepted too)."""

    model_config = ConfigDict(extra="allow")

    prompt: str
    model: str = Field(examples=["viduq1", "kling-v1", "gen4_turbo", "ray-2"])
    seconds: str | None = Field(default=None, examples=["4", "8"],
                                description="rounded up to the nearest duration the model offers")
    size: str | None = Field(default=None, examples=["1280x720", "720x1280"], description="maps to the aspect ratio")
    input_reference: bytes | None = Field(default=None, description="an image file, or input_reference[image_url]")


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(examples=["video_68d7512d07848190b3e45da0ecbebcde"])
    object: Literal["video"] = "video"
    model: str
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = None
    prompt: str | None = None
    seconds: str
    size: str
    remixed_from_video_id: str | None = None
    error: VideoError | None = None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VideoListQuery(BaseModel):
    after: str | None = None
    limit: int | None = Field(default=None, ge=1, le=100)
    order: Literal["asc", "desc"] | None = None


class ContentQuery(BaseModel):
    variant: Literal["video", "thumbnail", "spritesheet"] | None = None


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool
