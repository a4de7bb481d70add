"""Vidu platform format bodies as models (vidu.md §3), for the OpenAPI document only: the adaptor reads
and validates requests itself. Every object allows unknown keys, since the platform passes them through
(§3.6)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Common(_Open):
    """Fields every create accepts."""

    payload: str | None = Field(default=None, description="opaque, at most 1 MiB, echoed back")
    callback_url: str | None = Field(default=None, description="kept by gengate, which sends its own callbacks")
    off_peak: bool | None = None
    watermark: bool | None = None
    wm_position: int | None = Field(default=None, ge=1, le=4)
    wm_url: str | None = None


class _Generate(_Common):
    model: str = Field(examples=["viduq1", "vidu2.0", "viduq2"])
    prompt: str | None = None
    duration: int | None = Field(default=None, examples=[5])
    seed: int | None = None
    resolution: str | None = Field(default=None, examples=["1080p"])
    movement_amplitude: str | None = Field(default=None, examples=["auto"])
    bgm: bool | None = None


class Text2VideoRequest(_Generate):
    prompt: str
    style: str | None = Field(default=None, examples=["general"])
    aspect_ratio: str | None = Field(default=None, examples=["16:9"])


class Img2VideoRequest(_Generate):
    images: list[str] = Field(min_length=1, max_length=1, description="a URL or data:image/...;base64,...")


class StartEnd2VideoRequest(_Generate):
    images: list[str] = Field(min_length=2, max_length=2, description="start frame, end frame")


class Reference2VideoRequest(_Generate):
    prompt: str
    images: list[str] = Field(min_length=1, max_length=7)
    aspect_ratio: str | None = None


class UpscaleRequest(_Common):
    model: str = Field(default="vidu1.0", examples=["vidu1.0"])
    creation_id: str


class UpscaleNewRequest(_Common):
    video_url: str | None = None
    video_creation_id: str | None = Field(default=None, description="wins over video_url")
    upscale_resolution: str | None = Field(default=None, examples=["1080p", "2K", "4K", "8K"])


class CancelRequest(_Open):
    id: str | None = None


class CreatedTask(_Open):
    """The create reply: the request echoed, with the task id, state, credits and time."""

    task_id: str = Field(examples=["918530044712009728"])
    state: str = Field(examples=["created"])
    credits: int | float = 0
    created_at: str


class Creation(_Open):
    id: str
    url: str
    cover_url: str
    watermarked_url: str | None = None


class TaskCreations(_Open):
    id: str
    state: str = Field(examples=["created", "queueing", "processing", "success", "failed"])
    err_code: str = ""
    credits: int | float = 0
    payload: str = ""
    creations: list[Creation] = Field(default_factory=list)


class TaskList(_Open):
    tasks: list[CreatedTask]
    next_page_token: str = ""


class Empty(BaseModel):
    """`{}`."""

    model_config = ConfigDict(extra="forbid")
