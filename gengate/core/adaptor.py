"""The adaptor contract: what every task provider implements, and the values it exchanges with the core.

An adaptor only builds and parses: it turns a task (its `TaskRef`) into an `HttpCall` and an
`HttpReply` into a value. The core's one upstream client sends every call with the exact secret the
task is bound to, so the core alone decides which account is used. Optional abilities are separate
Protocols (`SupportsCancel`, `SupportsReconcile`, `SupportsBatchPoll`). A provider folder registers
its adaptors (and any extra views) through `gengate.providers.registry`; the core never names a provider.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol, runtime_checkable

from gengate.core.pricing import PriceTable
from gengate.core.states import TaskState


@dataclass(frozen=True)
class Account:
    """One upstream account: where and with which secret to call. Never logged or rendered."""

    base_url: str
    secret: str
    options: Mapping[str, str] = field(default_factory=dict)
    provider: str = ""  # metrics labels of the calls made with it (gengate.core.metrics)
    channel: str = ""

    def __repr__(self) -> str:  # keep the secret out of tracebacks and logs
        return f"Account(base_url={self.base_url!r}, secret=***)"


@dataclass(frozen=True)
class HttpCall:
    method: str
    path: str  # below the channel's base URL
    json_body: Any = None
    query: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpReply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Outcome(StrEnum):
    """How the core reads an upstream reply to a create."""

    ACCEPTED = "accepted"
    REFUSED = "refused"  # definitive: the job does not exist and never will (4xx, policy)
    RETRY = "retry"  # proved not accepted (429, 5xx): try another channel / later
    AUTH = "auth"  # the secret is bad (401/403): disable it, try another
    NO_CREDIT = "no_credit"  # the upstream account is out of credit: disable it, try another
    AMBIGUOUS = "ambiguous"  # a reply that does not say whether the job exists (e.g. garbled 200)


@dataclass(frozen=True)
class Submitted:
    outcome: Outcome
    upstream_id: str | None = None
    upstream_state: str | None = None
    reply: Any = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class OutputSpec:
    """One result of a finished task: URLs to copy into gengate storage, plus the provider's fields."""

    kind: str  # video | image | audio
    upstream_id: str | None
    urls: Mapping[str, str]  # field name → upstream URL (e.g. uri, cover_uri)
    meta: Mapping[str, Any]  # every other field, kept for rendering


@dataclass(frozen=True)
class Progress:
    state: TaskState  # RUNNING, SUCCEEDED (becomes rehosting), FAILED, CANCELLED
    upstream_state: str
    progress: int | None = None
    outputs: tuple[OutputSpec, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    reply: Any = None
    known: bool = True  # False: a state gengate does not know; keep polling, log it
    poll_after: float | None = None  # the provider's own hint for the next poll, if any


@dataclass(frozen=True)
class Parent:
    """A child task (upscale, extend, continuation) must go to the exact secret that made its parent."""

    task_id: int
    channel_id: int
    secret_id: int


@dataclass
class Prepared:
    """A validated create request, ready to be saved as a task."""

    action: str
    model: str
    request: dict[str, Any]  # as the client sent it: the reply echoes it
    upstream_request: dict[str, Any]  # what goes upstream (gengate ids mapped to upstream ids)
    units: Mapping[str, float]  # what the price is computed from (seconds, count, resolution...)
    parent: Parent | None = None
    callback_url: str | None = None
    slots: int = 1  # concurrency units the task occupies upstream (a Kling image task of n images: n)
    unique_field: UniqueField | None = None


@dataclass(frozen=True)
class UniqueField:
    """A top-level request field whose value no other (not deleted) task of the key and provider may
    have (Kling's client `external_task_id`). Checked in the insert's transaction under a lock on
    the value, so two racing creates, on any processes, cannot both pass; `error` is raised (in the
    family's envelope) for the loser."""

    name: str
    value: str
    error: Exception


@dataclass(frozen=True)
class TaskRef:
    """What an upstream call about an existing task may need: the job's id and how it was made
    (Kling polls `{create path}/{id}`; a marker sent at create finds a job whose reply was lost)."""

    upstream_id: str | None
    action: str
    model: str
    upstream_request: Mapping[str, Any]
    marker: str
    units: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FindResult:
    """What one page of the upstream's list says about a job whose create reply was lost."""

    upstream_ids: list[str]  # jobs matching the task, oldest first (one of them is the task's)
    more: bool  # whether older pages could still hold it


@dataclass(frozen=True)
class OutputView:
    public_id: str
    kind: str
    urls: Mapping[str, str]  # field name -> gengate's signed URL
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class TaskView:
    """What `render` sees of a task: never the upstream id, channel or secret."""

    public_id: str
    provider: str
    action: str
    model: str
    state: TaskState
    upstream_state: str | None
    progress: int | None
    request: dict[str, Any]
    upstream_reply: Any
    outputs: tuple[OutputView, ...]
    error_code: str | None
    error_message: str | None
    created_at: float
    updated_at: float
    reserved: int
    settled: int | None
    origin: str = ""  # the view (route family) the task was created through: see `TaskRenderer`


@dataclass(frozen=True)
class OwnedTask:
    """A task the calling key owns, as a create may refer to it (Luma keyframes `{type: generation}`)."""

    parent: Parent
    public_id: str
    provider: str
    action: str
    model: str
    state: TaskState
    upstream_id: str | None
    outputs: tuple[tuple[str | None, Mapping[str, Any]], ...]  # (upstream output id, meta) once succeeded


class Resolver(Protocol):
    """Looks up what a create refers to, for the calling key only (ownership)."""

    async def output(self, public_id: str, provider: str | None = None,
                     kind: str | None = None) -> tuple[Parent, str | None, Mapping[str, Any]] | None:
        """(parent ref, upstream output id, output meta) of an output this key owns, if it succeeded
        (and, when given, was made by `provider` and is of `kind`: video, image, audio)."""
        ...

    async def task(self, public_id: str, provider: str | None = None) -> OwnedTask | None:
        """A task this key owns (any state), by the id its family shows."""
        ...

    async def task_by_field(self, provider: str, name: str, value: str) -> OwnedTask | None:
        """A task of `provider` this key owns (not deleted) whose client request has the top-level
        string field `name` equal to `value` (Kling's `external_task_id`, unique per key)."""
        ...

    async def stash(self, value: str) -> str:
        """Keep large inline media (a base64 image of several MB) out of the stored request: the text
        goes to storage and the returned reference (`INLINE_PREFIX` + storage key) stands in for it
        in the upstream request; `build_submit` receives the request with the text put back."""
        ...


class TaskRenderer(Protocol):
    """How a task looks to its client: the provider's own shape, or another family's view of it (a
    Kling task created through `/v1/videos` renders and webhooks as a video object)."""

    id_kind: ClassVar[str]  # digits16 | digits18 | uuid | <prefix> (e.g. "video": video_...)

    def render(self, task: TaskView) -> dict[str, Any]: ...

    def provider_state(self, task: TaskView) -> str:
        """The state as this view shows it: webhooks fire when it changes."""
        ...


class TaskAdaptor(TaskRenderer, Protocol):
    """One provider's task format. An adaptor only builds calls and parses replies; the core sends
    them with the secret the task is bound to."""

    provider: ClassVar[str]
    prices: ClassVar[Mapping[str, int]]  # this provider's shipped price table entries ("<provider>:...")

    async def prepare(self, body: Any, resolver: Resolver) -> Prepared: ...
    def build_submit(self, account: Account, ref: TaskRef) -> HttpCall: ...
    def parse_submit(self, reply: HttpReply, ref: TaskRef) -> Submitted: ...
    def build_poll(self, account: Account, ref: TaskRef) -> HttpCall: ...
    def parse_poll(self, reply: HttpReply, ref: TaskRef) -> Progress: ...
    def price(self, units: Mapping[str, float], prices: PriceTable) -> int:
        """Credits reserved at create: the upper bound of what the task can cost, never below the
        provider's smallest billable unit."""
        ...
    def final_price(self, units: Mapping[str, float], outputs: tuple[OutputSpec, ...],
                    prices: PriceTable) -> int:
        """Credits settled at success, from what was produced (the core caps it at the reservation)."""
        ...


@runtime_checkable
class SupportsCancel(Protocol):
    def build_cancel(self, account: Account, ref: TaskRef) -> HttpCall: ...
    def parse_cancel(self, reply: HttpReply, ref: TaskRef) -> bool: ...


@runtime_checkable
class SupportsBatchPoll(Protocol):
    """Reads many jobs of one secret in one upstream call (e.g. Suno's `POST /fetch {ids}`); the
    poller then coalesces the polls of a secret that fall due together (core/engine/batch.py)."""

    batch_size: ClassVar[int]  # most jobs per call

    def build_poll_many(self, account: Account, refs: Sequence[TaskRef]) -> HttpCall: ...
    def parse_poll_many(self, reply: HttpReply, refs: Sequence[TaskRef]) -> Mapping[str, Progress]:
        """Each job's progress by upstream id (a 200 reply); a job left out is polled again later."""
        ...


@runtime_checkable
class SupportsReconcile(Protocol):
    """Finds a job whose create reply was lost, through the upstream's list or query."""

    def build_find(self, account: Account, ref: TaskRef, page: int) -> HttpCall: ...
    def parse_find(self, reply: HttpReply, ref: TaskRef, not_before: float) -> FindResult: ...


# A string in a stored upstream request that stands for stashed inline media: `<prefix><storage key>`.
INLINE_PREFIX = "gengate-inline:"
# The `origin` filter of a task list that keeps the tasks created through the provider's own routes
# (not through another view, e.g. /v1/videos), for a provider's own list endpoint.
NATIVE = ""


def auth_header(scheme: str, secret: str) -> dict[str, str]:
    return {"Authorization": f"{scheme} {secret}"}
