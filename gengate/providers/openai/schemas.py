"""OpenAI's error envelope as a model, for the OpenAPI documents of every family that answers in it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = None
    code: str | None = Field(default=None, examples=["not_found"])


class OpenAIError(BaseModel):
    """`{"error": {"message", "type", "param", "code"}}`."""

    error: OpenAIErrorDetail


# Documentation of the relay's routes (the handlers read the raw body; unknown fields pass through).
class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Model(_Open):
    id: str = Field(examples=["gpt-4o-mini"])
    object: str = "model"
    created: int
    owned_by: str


class ModelList(_Open):
    object: str = "list"
    data: list[Model]


class ChatCompletionRequest(_Open):
    """Any field OpenAI takes is passed through unchanged."""

    model: str = Field(examples=["gpt-4o-mini"])
    messages: list[dict[str, Any]]
    stream: bool | None = None
    stream_options: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None


class ChatCompletion(_Open):
    """Relayed as the upstream sent it; with `stream: true`, `chat.completion.chunk` events instead."""

    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class ResponsesRequest(_Open):
    model: str
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool | None = None
    max_output_tokens: int | None = None


class ResponseObject(_Open):
    id: str
    object: str = "response"
    created_at: int
    status: str
    model: str
    output: list[dict[str, Any]]
    usage: dict[str, Any] | None = None


class EmbeddingsRequest(_Open):
    model: str = Field(examples=["text-embedding-3-small"])
    input: str | list[Any]
    encoding_format: str | None = Field(default=None, examples=["float"])
    dimensions: int | None = None


class EmbeddingsReply(_Open):
    object: str = "list"
    model: str
    data: list[dict[str, Any]]
    usage: dict[str, Any]


class ImagesRequest(_Open):
    prompt: str
    model: str | None = Field(default=None, examples=["dall-e-3"])
    n: int | None = None
    size: str | None = None
    quality: str | None = None
    response_format: str | None = Field(default=None, examples=["url"])
    style: str | None = None


class ImageEditRequest(_Open):
    image: bytes
    prompt: str
    mask: bytes | None = None
    model: str | None = Field(default=None, examples=["dall-e-2"])
    n: int | None = None
    size: str | None = None
    response_format: str | None = None


class ImagesReply(_Open):
    created: int
    data: list[dict[str, Any]]
