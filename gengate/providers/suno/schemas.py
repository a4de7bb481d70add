"""Suno-API relay bodies as models (suno.md §1-§5), for the OpenAPI document only: the adaptor reads
and validates requests itself. Every object allows unknown keys, which pass through (§2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SunoMusicRequest(_Open):
    """Inspiration mode (`gpt_description_prompt`), custom mode (`prompt`, `title`, `tags`), or a
    continuation (`continue_clip_id` + `continue_at` + `task_id`, gengate's own ids)."""

    gpt_description_prompt: str | None = Field(default=None, examples=["an upbeat synthwave song about the moon"])
    prompt: str | None = Field(default=None, examples=["[Verse]\nStreetlights hum"])
    mv: str | None = Field(default=None, examples=["chirp-v3-5"], description="model version; default chirp-v3-0")
    title: str | None = None
    tags: str | None = Field(default=None, examples=["synthwave, retro"])
    negative_tags: str | None = None
    make_instrumental: bool | None = None
    continue_clip_id: str | None = None
    continue_at: float | None = None
    task_id: str | None = Field(default=None, description="the parent task of a continuation")
    task: str | None = Field(default=None, examples=["extend"])
    callback_url: str | None = Field(default=None, description="gengate's signed webhooks; not sent upstream")


class SunoLyricsRequest(_Open):
    prompt: str = Field(examples=["a song about a night drive"])
    callback_url: str | None = None


class SunoFetchRequest(_Open):
    ids: list[str] = Field(default_factory=list, max_length=100)
    action: str | None = Field(default=None, description="MUSIC or LYRICS; ignored")


class SunoSubmitReply(BaseModel):
    code: Literal["success"] = "success"
    message: str = ""
    data: str = Field(description="the task id")


class SunoTask(_Open):
    """The TaskDto (§3)."""

    task_id: str
    action: Literal["MUSIC", "LYRICS"]
    status: Literal["NOT_START", "SUBMITTED", "QUEUED", "IN_PROGRESS", "SUCCESS", "FAILURE", "UNKNOWN"]
    fail_reason: str
    submit_time: int
    start_time: int
    finish_time: int
    progress: str = Field(examples=["100%"])
    data: list[dict[str, Any]] | dict[str, Any] | None = Field(
        description="MUSIC: the clips (gengate-hosted audio_url, video_url, image_url, image_large_url); "
                    "LYRICS: {id, status, title, text}")


class SunoTaskReply(BaseModel):
    code: Literal["success"] = "success"
    message: str = ""
    data: SunoTask


class SunoTaskListReply(BaseModel):
    code: Literal["success"] = "success"
    message: str = ""
    data: list[SunoTask]


class SunoError(BaseModel):
    code: str = Field(examples=["invalid_request", "quota_not_enough", "task_not_exist"])
    message: str
    data: None = None
