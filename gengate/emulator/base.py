"""What a provider emulator implements, and the services the framework hands it.

A provider emulator (`gengate/providers/<name>/emulator.py`, listed in its `EMULATORS`) declares
its routes and its error shape; everything shared (auth, job bookkeeping, synchronous calls and
streams, faults, caps, holds, stats, signed media URLs) goes through its `EmulatorContext`, so
each emulator stays about its wire format. The guide is in `gengate/emulator/__init__.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute

from gengate.emulator import clock
from gengate.emulator.auth import AuthScheme
from gengate.emulator.cdn import MediaSigner
from gengate.emulator.drop import cut_after, drop_connection
from gengate.emulator.faults import AROUND, BEFORE_ANY, DEFAULT_AFTER_CHUNKS, FaultRule, matches
from gengate.emulator.media import MediaSpec
from gengate.emulator.replies import ProviderError, json_response
from gengate.emulator.sse import SSE_HEADERS, SSE_MEDIA_TYPE
from gengate.emulator.stats import ProviderStats
from gengate.emulator.store import Store, cap_for
from gengate.emulator.timeline import TaskRecord, draw_duration

# A body that starts like JSON and is not: what a crashing proxy in front of an API sends.
MALFORMED_BODY = b'{"id": "<html><body><h1>502 Bad Gateway</h1></body></html>'


class ProviderEmulator(Protocol):
    provider: ClassVar[str]  # the `channels add --provider` name; served under `/<provider>`

    def routes(self, ctx: EmulatorContext) -> Sequence[BaseRoute]:
        """The provider's own paths (relative to `/<provider>`), bound to `ctx`."""
        ...

    def error_response(
        self, status: int, message: str, reason: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """An error in the provider's own shape. `reason` is the provider's code when the caller
        knows it; otherwise the emulator picks the one it uses for `status`."""
        ...


@dataclass(slots=True)
class EmulatorContext:
    provider: str
    store: Store
    stats: ProviderStats
    signer: MediaSigner
    secrets: frozenset[str]
    task_seconds: tuple[float, float]
    poll_latency: float
    emulator: ProviderEmulator

    @staticmethod
    def now() -> float:
        return clock.now()

    def authorized(self, secret: str | None) -> bool:
        return secret is not None and secret in self.secrets

    def authenticate(self, request: Request, scheme: AuthScheme, message: str | None = None) -> str:
        """The request's upstream secret, or a 401 in the provider's shape (`ProviderError`)."""
        secret = scheme.secret(request)
        if secret is None or not self.authorized(secret):
            raise ProviderError(401, message or f"missing or invalid {scheme.expected()}")
        return secret

    def own_task(self, task_id: str, secret: str) -> TaskRecord | None:
        """The task if it exists for this secret: another account's task does not exist for it."""
        task = self.store.get_task(self.provider, task_id)
        return task if task is not None and task.secret == secret else None

    def media_url(self, spec: MediaSpec, name: str, now: float | None = None) -> str:
        return self.signer.url(self.provider, spec, name, now)

    # Faults.

    def take_fault(self, op: str, secret: str, kinds: frozenset[str], body: bytes = b"") -> FaultRule | None:
        """Use up one application of the oldest active rule of `kinds` that matches this request."""
        now = self.now()
        for rule in self.store.faults(now):
            if (matches(rule, self.provider, op, secret, kinds, now, body)
                    and self.store.consume_fault(rule["id"], now)):
                return rule
        return None

    async def before(self, request: Request, op: str, secret: str, *, streaming: bool = False) -> Response | None:
        """Faults that act before the request is handled. Returns the reply to send instead, if any.
        A create's timeout and drop wait for the job to be accepted: see `after_accept`. With
        `streaming` (a reply that `stream` will send) a drop waits to cut the stream."""
        if op == "create":
            kinds = BEFORE_ANY
        else:
            kinds = BEFORE_ANY | (frozenset({"timeout"}) if streaming else AROUND)
        rule = self.take_fault(op, secret, kinds, await _body(request))
        if rule is None:
            return None
        if rule["kind"] == "timeout":
            await asyncio.sleep(rule.get("seconds", 30.0))
            return None
        return await self._fault_reply(request, rule)

    async def after_accept(self, request: Request, secret: str) -> Response | None:
        """A create's timeout (delay the reply) or drop (hang up) once its job is stored."""
        rule = self.take_fault("create", secret, AROUND, await _body(request))
        if rule is None:
            return None
        if rule["kind"] == "timeout":
            await asyncio.sleep(rule.get("seconds", 30.0))
            return None
        return await drop_connection(request)

    def unknown_state(self, secret: str) -> bool:
        """Whether this poll should show a state the provider never documented."""
        return self.take_fault("poll", secret, frozenset({"unknown_state"})) is not None

    async def _fault_reply(self, request: Request, rule: FaultRule) -> Response:
        if rule["kind"] == "status":
            status = rule.get("status", 500)
            headers = {}
            if "retry_after" in rule:
                headers["Retry-After"] = str(rule["retry_after"])
            message = rule.get("message") or f"emulated fault: HTTP {status}"
            return self.emulator.error_response(status, message, None, headers)
        if rule["kind"] == "malformed":
            return Response(MALFORMED_BODY, media_type="application/json")
        return await drop_connection(request)

    # Jobs.

    def new_task(self, task_id: str, secret: str, data: dict[str, Any]) -> TaskRecord:
        return TaskRecord(
            provider=self.provider,
            id=task_id,
            secret=secret,
            accepted_at=self.now(),
            duration=draw_duration(task_id, self.task_seconds),
            data=data,
        )

    def accept(
        self, task: TaskRecord, aliases: Sequence[str] = (), *, fail_code: str = "failed", fail_message: str = ""
    ) -> bool:
        """Store a new job unless the secret's running cap is reached (then False: not a job, and
        not counted). The cap check and the insert are one step of the store (one transaction on
        SQLite), so concurrent creates never exceed a cap. A `fail_task` rule makes the job end
        failed, with the rule's `err_code`/`err_msg` or else `fail_code`/`fail_message`."""
        cap = cap_for(self.store.caps(), self.provider, task.secret)
        accepted = self.store.add_task(task, aliases, cap, task.accepted_at)
        if accepted is None:
            return False
        self.stats.accepted(task.secret, accepted.running_secret, accepted.running_total)
        rule = self.take_fault("create", task.secret, frozenset({"fail_task"}))
        if rule is not None:
            code = rule.get("err_code") or fail_code
            message = rule.get("err_msg") or fail_message or code
            self.store.mark_failed(self.provider, task.id, code, message)
            task.fail_code, task.fail_message = code, message
        return True

    def cancel(self, task: TaskRecord) -> bool:
        """Cancel a job that is still running; False when it already ended."""
        if not self.store.cancel_task(self.provider, task.id, self.now()):
            return False
        self.stats.canceled(task.secret)
        return True

    @asynccontextmanager
    async def polling(self, secret: str, task_id: str) -> AsyncIterator[None]:
        """Count one poll and hold it "in flight" for `poll_latency`, as a real upstream takes time
        to answer; a poll of the same task arriving meanwhile counts as overlapping."""
        self.stats.polled(secret)
        with self.stats.poll_in_flight(task_id):
            if self.poll_latency > 0:
                await asyncio.sleep(self.poll_latency)
            yield

    async def poll(self, request: Request, secret: str, task_id: str,
                   answer: Callable[[Callable[[], bool]], Response]) -> Response:
        """One read of a task as every provider's emulator serves it: counted by `polling`, faults of
        op "poll" first, then `answer(unknown)`; `unknown()` tells whether this read shows a state the
        provider never documented (it uses up that fault: call it once the task was found)."""
        async with self.polling(secret, task_id):
            if (reply := await self.before(request, "poll", secret)) is not None:
                return reply
            return answer(lambda: self.unknown_state(secret))

    # Synchronous calls (chat, embeddings, images, responses): op "create", no stored job. The
    # handler authenticates, applies `before(request, "create", secret)` (status, malformed: no
    # call), validates, then hands its reply to one of these, which apply timeout and drop.

    async def answer_call(
        self, request: Request, secret: str, body: object, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Answer a synchronous call with `body` (JSON), counted once in `creates`. A `timeout`
        rule delays the answer; `drop_after_accept` does the work (counted) and hangs up."""
        rule = await self._call_fault(secret)
        self.stats.called(secret)
        if rule is not None:
            return await drop_connection(request)
        return json_response(body, status, headers)

    async def stream_call(
        self,
        request: Request,
        secret: str,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
        *,
        media_type: str = SSE_MEDIA_TYPE,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Stream `chunks` (e.g. `sse_event(...)` bytes) as one synchronous call, counted once in
        `creates` when the headers go out, also when a fault or the client cuts it. A `timeout`
        rule delays the headers; `drop_after_accept` sends the headers and its `after_chunks`
        chunks (default 2), then closes the connection."""
        rule = await self._call_fault(secret)
        self.stats.called(secret)
        return _cut_stream(request, chunks, rule, media_type, headers)

    def stream(
        self,
        request: Request,
        op: str,
        secret: str,
        chunks: AsyncIterable[bytes] | Iterable[bytes],
        *,
        media_type: str = SSE_MEDIA_TYPE,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Stream `chunks` for a non-create op (a task's state stream, op "poll"), after
        `before(..., streaming=True)`: a `drop_after_accept` rule sends the headers and its
        `after_chunks` chunks, then closes the connection."""
        rule = self.take_fault(op, secret, frozenset({"drop_after_accept"}))
        return _cut_stream(request, chunks, rule, media_type, headers)

    async def _call_fault(self, secret: str) -> FaultRule | None:
        """Wait out a `timeout` rule; return a `drop_after_accept` rule for the caller to apply."""
        rule = self.take_fault("create", secret, AROUND)
        if rule is not None and rule["kind"] == "timeout":
            await asyncio.sleep(rule.get("seconds", 30.0))
            return None
        return rule


def _cut_stream(
    request: Request,
    chunks: AsyncIterable[bytes] | Iterable[bytes],
    rule: FaultRule | None,
    media_type: str,
    headers: Mapping[str, str] | None,
) -> StreamingResponse:
    cut = None if rule is None else int(rule.get("after_chunks", DEFAULT_AFTER_CHUNKS))
    body = cut_after(request, _aiter(chunks), cut)
    return StreamingResponse(body, media_type=media_type, headers={**SSE_HEADERS, **(headers or {})})


async def _aiter(chunks: AsyncIterable[bytes] | Iterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


async def _body(request: Request) -> bytes:
    """The request's body for `body_contains` rules (Starlette keeps it for the handler)."""
    return await request.body() if request.method in ("POST", "PUT", "PATCH") else b""
