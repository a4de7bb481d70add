"""OpenAI's error envelope as a model, for the OpenAPI documents of every family that answers in it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(examples=["invalid_request_error"])
    param: str | None = None
    code: str | None = Field(default=None, examples=["not_found"])


class OpenAIError(BaseModel):
    """`{"error": {"message", "type", "param", "code"}}`."""

    error: OpenAIErrorDetail
