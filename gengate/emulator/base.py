"""What a provider emulator implements, and the services the framework hands it.

A provider emulator (`gengate/providers/<name>/emulator.py`, listed in its `EMULATORS`) declares
its routes and its error shape; everything shared (job bookkeeping, faults, caps, holds, stats,
signed media URLs) goes through its `EmulatorContext`, so each emulator stays about its wire format.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gengate.emulator.cdn import MediaSigner
from gengate.emulator.drop import drop_connection
from gengate.emulator.faults import AROUND, BEFORE_ANY, FaultRule, matches
from gengate.emulator.media import MediaSpec
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
        return time.time()

    def authorized(self, secret: str | None) -> bool:
        return secret is not None and secret in self.secrets

    def media_url(self, spec: MediaSpec, name: str, now: float | None = None) -> str:
        return self.signer.url(self.provider, spec, name, now)

    # Faults.

    def take_fault(self, op: str, secret: str, kinds: frozenset[str]) -> FaultRule | None:
        """Use up one application of the oldest active rule of `kinds` that matches this request."""
        now = self.now()
        for rule in self.store.faults(now):
            if matches(rule, self.provider, op, secret, kinds, now) and self.store.consume_fault(rule["id"], now):
                return rule
        return None

    async def before(self, request: Request, op: str, secret: str) -> Response | None:
        """Faults that act before the request is handled. Returns the reply to send instead, if any.
        A create's timeout and drop wait for the job to be accepted: see `after_accept`."""
        kinds = BEFORE_ANY if op == "create" else BEFORE_ANY | AROUND
        rule = self.take_fault(op, secret, kinds)
        if rule is None:
            return None
        if rule["kind"] == "timeout":
            await asyncio.sleep(rule.get("seconds", 30.0))
            return None
        return await self._fault_reply(request, rule)

    async def after_accept(self, request: Request, secret: str) -> Response | None:
        """A create's timeout (delay the reply) or drop (hang up) once its job is stored."""
        rule = self.take_fault("create", secret, AROUND)
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

    def accept(self, task: TaskRecord, aliases: Sequence[str] = ()) -> bool:
        """Store a new job unless the secret's running cap is reached (then False: not a job)."""
        cap = cap_for(self.store.caps(), self.provider, task.secret)
        accepted = self.store.add_task(task, aliases, cap, task.accepted_at)
        if accepted is None:
            return False
        self.stats.accepted(task.secret, accepted.running_secret, accepted.running_total)
        rule = self.take_fault("create", task.secret, frozenset({"fail_task"}))
        if rule is not None:
            code = rule.get("err_code", "CreationPolicyViolation")
            self.store.mark_failed(self.provider, task.id, code, rule.get("err_msg", code))
            task.fail_code, task.fail_message = code, rule.get("err_msg", code)
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
