"""Runway bodies as models (runway.md §3-§5), for the OpenAPI document only: the adaptor validates
requests itself (rules.py). Unknown keys are allowed and passed upstream."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class RunwayPromptImage(_Open):
    uri: str = Field(description="An HTTPS URL on a domain name, or a data URI up to 5 MB")
    position: Literal["first", "last"]


class RunwayContentModeration(_Open):
    publicFigureThreshold: Literal["auto", "low"] | None = None


class RunwayImageToVideo(_Open):
    """`POST /runway/v1/image_to_video`."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "gen4_turbo", "promptImage": "https://example.com/cat.png", "ratio": "1280:720", "duration": 5,
         "promptText": "the cat turns its head"}]})

    model: str = Field(examples=["gen4_turbo"])
    promptImage: str | list[RunwayPromptImage]
    ratio: str = Field(examples=["1280:720", "720:1280", "960:960"])
    promptText: str | None = Field(default=None, max_length=1000)
    duration: int | None = Field(default=None, examples=[5, 10])
    seed: int | None = Field(default=None, ge=0, le=4294967295)
    contentModeration: RunwayContentModeration | None = None


class RunwayReferenceImage(_Open):
    uri: str
    tag: str | None = None


class RunwayTextToImage(_Open):
    """`POST /runway/v1/text_to_image`."""

    model: str = Field(examples=["gen4_image"])
    promptText: str = Field(max_length=1000)
    ratio: str = Field(examples=["1920:1080", "1024:1024", "1280:720"])
    referenceImages: list[RunwayReferenceImage] | None = Field(default=None, max_length=3)
    seed: int | None = Field(default=None, ge=0, le=4294967295)
    contentModeration: RunwayContentModeration | None = None


class RunwayTextToVideo(_Open):
    """`POST /runway/v1/text_to_video`: `gen4.5` (duration 2-10, required), `veo3.1`, `veo3.1_fast`
    (duration 4, 6 or 8; `audio`, `negativePrompt`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "gen4.5", "promptText": "a paper boat drifts down a rainy street", "ratio": "1280:720",
         "duration": 5}]})

    model: str = Field(examples=["gen4.5", "veo3.1", "veo3.1_fast"])
    promptText: str = Field(max_length=1000)
    ratio: str = Field(examples=["1280:720", "720:1280", "1920:1080", "1080:1920"])
    duration: int | None = Field(default=None, examples=[5, 8])
    audio: bool | None = Field(default=None, description="veo models; sound is on unless false")
    negativePrompt: str | None = None
    seed: int | None = Field(default=None, ge=0, le=4294967295)
    contentModeration: RunwayContentModeration | None = None


class RunwayImageUpscale(_Open):
    """`POST /runway/v1/image_upscale`."""

    model: Literal["magnific_precision_upscaler_v2"]
    imageUri: str = Field(description="An HTTPS URL on a domain name, or an image data URI up to 5 MB")
    scaleFactor: Literal[2, 4, 8, 16] | None = Field(default=None, description="2 by default")
    flavor: Literal["sublime", "photo", "photo_denoiser"] | None = None
    sharpen: int | None = Field(default=None, ge=0, le=100)
    smartGrain: int | None = Field(default=None, ge=0, le=100)
    ultraDetail: int | None = Field(default=None, ge=0, le=100)


class RunwayVideoUpscale(_Open):
    """`POST /runway/v1/video_upscale`: `magnific_video_upscaler_creative` (`resolution`, `creativity`,
    `flavor`, `fpsBoost`, `sharpen`, `smartGrain`) or `enhance_frame_rate` (`targetFramerate`)."""

    model: Literal["magnific_video_upscaler_creative", "enhance_frame_rate"]
    videoUri: str = Field(description="An HTTPS URL on a domain name, or a video data URI up to 5 MB")
    resolution: Literal["720p", "1k", "2k", "4k"] | None = None
    targetFramerate: Literal["24", "25", "30", "48", "50", "60", "120", "23_98", "29_97", "59_94"] | None = None
    creativity: int | None = Field(default=None, ge=0, le=100)
    flavor: Literal["vivid", "natural"] | None = None
    fpsBoost: bool | None = None
    sharpen: int | None = Field(default=None, ge=0, le=100)
    smartGrain: int | None = Field(default=None, ge=0, le=100)


class RunwayImageReference(_Open):
    type: Literal["image"]
    uri: str


class RunwayVideoToVideo(_Open):
    """`POST /runway/v1/video_to_video`: `gen4_aleph` edits the first 5 s of `videoUri` as told."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": "gen4_aleph", "videoUri": "https://example.com/street.mp4", "promptText": "make it snow",
         "ratio": "1280:720"}]})

    model: Literal["gen4_aleph"]
    videoUri: str = Field(description="An HTTPS URL on a domain name, a video data URI up to 5 MB, or a "
                                      "`runway://` URI from `POST /runway/v1/uploads`")
    promptText: str = Field(max_length=1000)
    ratio: str = Field(examples=["1280:720", "720:1280", "960:960"])
    references: list[RunwayImageReference] | None = Field(default=None, max_length=1)
    seed: int | None = Field(default=None, ge=0, le=4294967295)
    contentModeration: RunwayContentModeration | None = None


class RunwayUploadStart(BaseModel):
    """`POST /runway/v1/uploads`: step 1 of an ephemeral upload."""

    filename: str = Field(examples=["cat.png"])
    type: Literal["ephemeral"] = "ephemeral"


class RunwayUploadStarted(BaseModel):
    """Post the file to `uploadUrl` as `multipart/form-data` with `fields` first (no Authorization),
    then use `runwayUri` (valid 24 h, for this key) as a create's media URI."""

    uploadUrl: str
    fields: dict[str, str]
    runwayUri: str = Field(examples=["runway://gengate/1765000000-AbCdEfGhIjKlMnOpQrStUv"])


class RunwayModelLimits(BaseModel):
    maxConcurrentGenerations: int | None = None
    maxDailyGenerations: int | None = None


class RunwayTier(BaseModel):
    maxMonthlyCreditSpend: int
    models: dict[str, RunwayModelLimits]


class RunwayModelUsage(BaseModel):
    dailyGenerations: int


class RunwayOrgUsage(BaseModel):
    models: dict[str, RunwayModelUsage]


class RunwayOrganization(BaseModel):
    """The calling key as Runway's organization: its balance in Runway credits (US$0.01 each)."""

    creditBalance: int
    tier: RunwayTier
    usage: RunwayOrgUsage


class RunwayUsageQuery(BaseModel):
    """`POST /runway/v1/organization/usage` (UTC dates; `beforeDate` is exclusive)."""

    startDate: str | None = Field(default=None, examples=["2025-06-01"])
    beforeDate: str | None = Field(default=None, examples=["2025-07-01"])


class RunwayUsedCredit(BaseModel):
    amount: int
    model: str


class RunwayUsageDay(BaseModel):
    date: str
    usedCredits: list[RunwayUsedCredit]


class RunwayUsage(BaseModel):
    models: list[str]
    results: list[RunwayUsageDay]


class RunwayCredits(BaseModel):
    credits: float


class RunwayCreated(BaseModel):
    """The reply to a create: poll `GET /runway/v1/tasks/{id}` with the id."""

    id: str = Field(examples=["0b9e7c1a-5d3f-4e2b-9a61-7f0c2d8e4b13"])
    estimatedCost: RunwayCredits


class RunwayTask(_Open):
    """The task; which fields are present depends on `status`."""

    id: str
    status: Literal["PENDING", "THROTTLED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]
    createdAt: str = Field(examples=["2025-06-03T14:00:00.000Z"])
    estimatedCost: RunwayCredits | None = Field(default=None, description="PENDING, THROTTLED, RUNNING")
    progress: float | None = Field(default=None, description="RUNNING: 0 to 1")
    output: list[str] | None = Field(default=None, description="SUCCEEDED: gengate's media URLs")
    cost: RunwayCredits | None = Field(default=None, description="SUCCEEDED, FAILED, CANCELLED (integer credits)")
    failure: str | None = None
    failureCode: str | None = None


class RunwayIssue(_Open):
    code: str
    path: list[str | int]
    message: str | None = None
    values: list[str | int] | None = None


class RunwayError(BaseModel):
    """`{"error", "issues"?, "docUrl"?}`."""

    error: str = Field(examples=["Validation of body failed"])
    issues: list[RunwayIssue] | None = None
    docUrl: str | None = None
