"""Vidu web/app format bodies as models (vidu.md §2.2-§2.6, §3.7), for the OpenAPI document only: the
adaptor reads and validates requests itself. Every object allows unknown keys, since Vidu passes them
through (§2.8)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TaskType = Literal["text2video", "img2video", "character2video", "headtailimg2video", "upscale", "text2image",
                   "reference2image"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ViduPoint(_Open):
    x: int
    y: int


class ViduRegion(_Open):
    top_left: ViduPoint
    bottom_right: ViduPoint


class ViduMaterialRef(_Open):
    id: str
    version: str | None = None


class ViduPrompt(_Open):
    """A text, an image reference (`ssupload:?id=...` or an https URL) or a material cited as `[@name]`."""

    type: Literal["text", "image", "material"]
    content: str | None = None
    src_img: str | None = None
    src_imgs: list[str] | None = None
    selected_region: ViduRegion | None = None
    name: str | None = None
    material: ViduMaterialRef | None = None
    negative: bool | None = None
    enhance: bool | None = None
    recaption: str | None = None


class ViduInput(_Open):
    prompts: list[ViduPrompt] = Field(default_factory=list, max_length=20)
    enhance: bool | None = None
    editor_mode: str | None = Field(default=None, examples=["normal"])
    creation_id: str | None = Field(default=None, description="upscale only: a creation id, not a task id")


class ViduSettings(_Open):
    """Keys changed with each model generation; every key, known or not, is passed through."""

    model: str | None = Field(default=None, examples=["vidu-1", "stable"])
    model_version: str | None = Field(default=None, examples=["2.0", "3.2"])
    duration: float | None = Field(default=None, examples=[4])
    resolution: str | None = Field(default=None, examples=["720p", "1080p"])
    aspect_ratio: str | None = Field(default=None, examples=["16:9"])
    style: str | None = Field(default=None, examples=["general", "anime"])
    movement_amplitude: str | None = Field(default=None, examples=["auto"])
    sample_count: int | None = None
    schedule_mode: str | None = Field(default=None, examples=["normal", "nopeak"])
    transition: str | None = Field(default=None, examples=["pro", "speed"])
    codec: str | None = Field(default=None, examples=["h265"])
    use_trial: bool | None = None


class ViduCreateRequest(_Open):
    """`POST /vidu/v1/tasks`: `type` picks the action."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat on a rainy street"}]},
         "settings": {"duration": 4, "resolution": "720p", "model_version": "2.0"}},
        {"type": "upscale", "input": {"creation_id": "2372019004418230"}, "settings": {"model": "stable"}},
    ]})

    type: TaskType
    input: ViduInput
    settings: ViduSettings = Field(default_factory=ViduSettings)
    callback_url: str | None = Field(default=None, description="gengate POSTs the task here on every change "
                                                               "(signed); not forwarded upstream")


class ViduSize(_Open):
    width: int
    height: int


class ViduVideoMeta(_Open):
    duration: float
    fps: float | None = None
    resolution: ViduSize | None = None


class ViduCreation(_Open):
    id: str
    task_id: str
    type: Literal["video", "image"]
    grade: str | None = None
    uri: str
    nomark_uri: str | None = None
    download_uri: str | None = None
    cover_uri: str | None = None
    resolution: ViduSize | None = None
    video: ViduVideoMeta | None = None
    err_code: str = ""
    created_at: str


class ViduTask(_Open):
    """The task object (reply to create and to GET)."""

    id: str
    type: TaskType
    state: str = Field(examples=["created", "queueing", "processing", "success", "failed", "canceled"])
    input: ViduInput
    settings: ViduSettings
    err_code: str = ""
    err_msg: str | None = None
    created_at: str = Field(examples=["2024-09-02T08:30:11.402115Z"])
    creations: list[ViduCreation]


class ViduStateQuery(BaseModel):
    id: str = Field(description="The task id")


class ViduQueueWait(_Open):
    min: list[int]
    max: list[int]


class ViduStateEvent(_Open):
    """One `data:` line of the progress stream; the stream closes after a terminal state."""

    state: str
    estimated_time_left: int | None = None
    err_code: str = ""
    queue_wait_time: ViduQueueWait | None = None


class ViduErrorMetadata(_Open):
    trace_id: str


class ViduError(BaseModel):
    """`{code, reason, message, metadata.trace_id}`; `code` repeats the HTTP status."""

    code: int = Field(examples=[400])
    reason: str = Field(examples=["BadRequest", "TaskNotFound", "CreditInsufficient"])
    message: str
    metadata: ViduErrorMetadata


class ViduEmpty(BaseModel):
    """`{}`."""

    model_config = ConfigDict(extra="forbid")
