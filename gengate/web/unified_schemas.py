"""The unified task object (interface.md "Unified task API") as models, for the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TaskOutput(BaseModel):
    url: str
    type: str = Field(examples=["video"])


class TaskError(BaseModel):
    code: str
    message: str


class TaskCost(BaseModel):
    reserved: int
    settled: int | None


class TaskObject(BaseModel):
    """gengate's own task object; `id` is the task's id as its family's reply shows it."""

    id: str
    object: Literal["task"] = "task"
    provider: str = Field(examples=["vidu"])
    model: str
    status: Literal["queued", "in_progress", "succeeded", "failed", "cancelled"]
    progress: int | None = Field(ge=0, le=100)
    created_at: int = Field(description="Unix seconds")
    updated_at: int = Field(description="Unix seconds")
    outputs: list[TaskOutput]
    error: TaskError | None
    cost: TaskCost


class TaskListQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    after: str | None = Field(None, description="the id of the previous page's last task (a cursor)")
    provider: str | None = Field(None, description="only tasks of this provider (the `channels add` names)")


class TaskList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TaskObject]
    first_id: str | None
    last_id: str | None
    has_more: bool


class TaskDeleted(BaseModel):
    id: str
    object: Literal["task.deleted"] = "task.deleted"
    deleted: Literal[True] = True
