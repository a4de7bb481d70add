"""Documentation of GLM's routes (OpenAPI). The handlers read the raw body; unknown fields pass through."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ChatRequest(_Open):
    model: str = Field(examples=["glm-4-flash"])
    messages: list[dict[str, Any]]
    stream: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    tools: list[dict[str, Any]] | None = None


class ChatReply(_Open):
    id: str
    request_id: str | None = None
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ImagesRequest(_Open):
    model: str = Field(examples=["cogview-4"])
    prompt: str
    size: str | None = None
    quality: str | None = None


class ImagesReply(_Open):
    created: int
    data: list[dict[str, Any]]


class VideoRequest(_Open):
    model: str = Field(examples=["cogvideox-3"])
    prompt: str | None = None
    image_url: Any = None
    duration: int | None = None
    size: str | None = None


class AsyncTask(_Open):
    id: str | None = None
    model: str
    request_id: str | None = None
    task_status: str = Field(examples=["PROCESSING"])
    video_result: list[dict[str, str]] | None = None
    choices: list[dict[str, Any]] | None = None  # a finished asynchronous chat
    usage: dict[str, Any] | None = None
