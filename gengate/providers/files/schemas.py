"""The file service's shapes, for the OpenAPI document (handlers read and validate requests themselves)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class FileUpload(BaseModel):
    """`multipart/form-data`: the file and what it is for."""

    file: bytes = Field(json_schema_extra={"format": "binary"})
    purpose: Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals", "file-extract"]
    expires_after_anchor: Literal["created_at"] | None = Field(default=None, alias="expires_after[anchor]")
    expires_after_seconds: int | None = Field(default=None, alias="expires_after[seconds]", ge=3600, le=2592000)


class FileObject(BaseModel):
    id: str = Field(examples=["file-8Zq1c2"])
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"]
    status_details: str | None = None


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


class FileListQuery(BaseModel):
    purpose: str | None = None
    limit: int = Field(default=10000, ge=1, le=10000)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool


class ExtractedFile(BaseModel):
    """`GET /v1/files/{id}/content` of a `file-extract` file (Kimi's format); other files answer raw bytes."""

    content: str
    file_type: str = Field(examples=["application/pdf"])
    filename: str
    title: str
    type: Literal["file"] = "file"
