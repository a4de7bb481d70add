"""The video object view (openai.md §8): how a task created through `/v1/videos` looks on every route
that shows it (`/v1/videos`, its webhooks, and the `origin` the core renders it by). No adaptor of its
own: the task is the provider's, created through the table in `table.py`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gengate.core.adaptor import TaskView
from gengate.core.states import TaskState
from gengate.providers.videos.table import MODELS, Route

S = TaskState
ORIGIN = "videos"
REQUEST_KEY = "_video"  # what the client asked, kept in the task's stored request (never sent upstream)

STATUS: dict[TaskState, str] = {
    S.QUEUED: "queued", S.SUBMITTING: "queued", S.AMBIGUOUS: "queued", S.RUNNING: "in_progress",
    S.REHOSTING: "in_progress", S.SUCCEEDED: "completed", S.FAILED: "failed", S.CANCELLED: "failed",
}


def route_of(task: TaskView) -> Route | None:
    entry = MODELS.get(task.model)
    return next((r for r in entry.routes if r.provider == task.provider), None) if entry else None


def produced_seconds(task: TaskView, route: Route | None) -> float | None:
    """How long the produced clip is, where the provider's result says it."""
    if route is None or not route.duration_path or not task.outputs:
        return None
    node: Any = task.outputs[0].meta
    for part in route.duration_path:
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, str):
        try:
            node = float(node)
        except ValueError:
            return None
    if isinstance(node, int | float) and not isinstance(node, bool) and 0 < node < 1e6:
        return float(node)
    return None


def video_status(task: TaskView) -> str:
    status = STATUS[task.state]
    if task.state is S.RUNNING and task.upstream_state in ("created", "queueing", "queued", "pending"):
        return "queued"  # accepted upstream, still waiting there
    return status


def _seconds_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


class VideoView:
    id_kind: ClassVar[str] = "video"

    def render(self, task: TaskView) -> dict[str, Any]:
        asked = task.request.get(REQUEST_KEY) or {}
        route = route_of(task)
        status = video_status(task)
        seconds = produced_seconds(task, route) if status == "completed" else None
        progress = 100 if status == "completed" else int(task.progress or 0)
        error = None
        if status == "failed":
            error = {"code": task.error_code or ("cancelled" if task.state is S.CANCELLED else "failed"),
                     "message": task.error_message or f"the video generation {task.state.value}"}
        return {
            "id": task.public_id, "object": "video", "model": task.model, "status": status,
            "progress": min(max(progress, 0), 100), "created_at": int(task.created_at),
            "completed_at": int(task.updated_at) if task.state in (S.SUCCEEDED, S.FAILED, S.CANCELLED) else None,
            "expires_at": None, "prompt": asked.get("prompt"),
            "seconds": _seconds_text(seconds) if seconds else str(asked.get("seconds", "")),
            "size": asked.get("size", ""), "remixed_from_video_id": None, "error": error,
        }

    def provider_state(self, task: TaskView) -> str:
        return video_status(task)


VIEWS = {ORIGIN: VideoView()}
