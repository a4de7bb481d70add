"""Kling's bodies as models (kling.md §2, §4), for the OpenAPI document only: the adaptor reads and
validates requests itself. Objects allow unknown keys, which Kling's newer models add often."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class KlingCameraConfig(_Open):
    horizontal: float = 0
    vertical: float = 0
    pan: float = 0
    tilt: float = 0
    roll: float = 0
    zoom: float = 0


class KlingCameraControl(_Open):
    type: Literal["simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"]
    config: KlingCameraConfig | None = Field(default=None, description="`simple` only: exactly one non-zero axis")


class KlingWatermark(_Open):
    enabled: bool = False


class _VideoCommon(_Open):
    model_name: str = Field(default="kling-v1", examples=["kling-v1", "kling-v1-6", "kling-v2-master"])
    negative_prompt: str | None = Field(default=None, max_length=2500)
    cfg_scale: float | None = Field(default=None, ge=0, le=1, description="not on v2.x models")
    mode: Literal["std", "pro"] = "std"
    camera_control: KlingCameraControl | None = None
    duration: str = Field(default="5", examples=["5", "10"], description='"5" or "10"; v3: "3" to "15"')
    sound: Literal["on", "off"] | None = Field(default=None, description="v2.6 and later")
    watermark_info: KlingWatermark | None = None
    callback_url: str | None = Field(default=None, description="gengate POSTs the task object here on every "
                                                               "change (signed); not forwarded upstream")
    external_task_id: str | None = Field(default=None, description="yours; unique per key, echoed in task_info")


class KlingText2VideoRequest(_VideoCommon):
    """`POST /kling/v1/videos/text2video`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model_name": "kling-v1", "prompt": "a paper boat on a rainy street", "duration": "5", "mode": "std",
         "aspect_ratio": "16:9"}]})

    prompt: str = Field(max_length=2500)
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"


class KlingTrajectoryPoint(_Open):
    x: int
    y: int


class KlingDynamicMask(_Open):
    mask: str
    trajectories: list[KlingTrajectoryPoint] = Field(min_length=2, max_length=77)


class KlingImage2VideoRequest(_VideoCommon):
    """`POST /kling/v1/videos/image2video`: `image`, `image_tail` or both (URL, or bare base64)."""

    prompt: str | None = Field(default=None, max_length=2500)
    image: str | None = Field(default=None, description="an image URL, or base64 without a data: prefix")
    image_tail: str | None = Field(default=None, description="the last frame")
    static_mask: str | None = None
    dynamic_masks: list[KlingDynamicMask] | None = None


class KlingImageRequest(_Open):
    """`POST /kling/v1/images/generations`."""

    model_name: str = Field(default="kling-v1", examples=["kling-v1", "kling-v1-5", "kling-v2"])
    prompt: str = Field(max_length=2500)
    negative_prompt: str | None = Field(default=None, max_length=2500)
    image: str | None = None
    image_reference: Literal["subject", "face"] | None = None
    image_fidelity: float | None = Field(default=None, ge=0, le=1)
    human_fidelity: float | None = Field(default=None, ge=0, le=1)
    resolution: Literal["1k", "2k"] = "1k"
    n: int = Field(default=1, ge=1, le=9)
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"] = "16:9"
    callback_url: str | None = None
    external_task_id: str | None = None


class KlingVideoExtendRequest(_Open):
    """`POST /kling/v1/videos/video-extend`: adds 4-5 s to a video of this key, on the account that made it."""

    video_id: str = Field(description="a video id from this key's task_result.videos")
    prompt: str | None = Field(default=None, max_length=2500)
    negative_prompt: str | None = Field(default=None, max_length=2500)
    cfg_scale: float | None = Field(default=None, ge=0, le=1)
    callback_url: str | None = None
    external_task_id: str | None = None


class KlingLipSyncInput(_Open):
    video_id: str | None = Field(default=None, description="a video of this key; or video_url")
    video_url: str | None = None
    mode: Literal["text2video", "audio2video"]
    text: str | None = Field(default=None, max_length=120, description="text2video")
    voice_id: str | None = Field(default=None, description="text2video")
    voice_language: Literal["zh", "en"] | None = None
    voice_speed: float | None = Field(default=None, ge=0.8, le=2.0)
    audio_type: Literal["file", "url"] | None = Field(default=None, description="audio2video")
    audio_file: str | None = Field(default=None, description="base64 audio, at most 5 MB")
    audio_url: str | None = None


class KlingLipSyncRequest(_Open):
    """`POST /kling/v1/videos/lip-sync`."""

    input: KlingLipSyncInput
    callback_url: str | None = None
    external_task_id: str | None = None


class KlingTryOnRequest(_Open):
    """`POST /kling/v1/images/kolors-virtual-try-on`: one image of the person wearing the garment."""

    model_name: str = Field(default="kolors-virtual-try-on-v1")
    human_image: str = Field(description="an image URL, or base64 without a data: prefix")
    cloth_image: str = Field(description="an image URL, or base64 without a data: prefix")
    callback_url: str | None = None
    external_task_id: str | None = None


class KlingVideo(_Open):
    id: str
    url: str = Field(description="gengate's own URL")
    duration: str = Field(examples=["5.0"])


class KlingImage(_Open):
    index: int
    url: str


class KlingTaskResult(_Open):
    videos: list[KlingVideo] | None = None
    images: list[KlingImage] | None = None


class KlingParentVideo(_Open):
    id: str
    duration: str | None = None


class KlingTaskInfo(_Open):
    external_task_id: str | None = None
    parent_video: KlingParentVideo | None = Field(default=None, description="video-extend and lip-sync")


class KlingTask(_Open):
    task_id: str = Field(examples=["871042355120988160"])
    task_status: str = Field(examples=["submitted", "processing", "succeed", "failed"])
    task_status_msg: str = ""
    task_info: KlingTaskInfo
    created_at: int = Field(description="milliseconds since the epoch")
    updated_at: int = Field(description="milliseconds since the epoch")
    task_result: KlingTaskResult | None = None


class KlingTaskReply(BaseModel):
    code: int = Field(examples=[0])
    message: str = Field(examples=["SUCCEED"])
    request_id: str
    data: KlingTask


class KlingTaskList(BaseModel):
    code: int = Field(examples=[0])
    message: str = Field(examples=["SUCCEED"])
    request_id: str
    data: list[KlingTask]


class KlingListQuery(BaseModel):
    pageNum: int = Field(default=1, ge=1, le=1000)
    pageSize: int = Field(default=30, ge=1, le=500)


class KlingError(BaseModel):
    """`{code, message, request_id}` with the HTTP status of Kling's code table."""

    code: int = Field(examples=[1201])
    message: str
    request_id: str
