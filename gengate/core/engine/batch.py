"""Batch polling: the polls of one secret that fall due together go upstream as one call.

Used for adaptors that implement `SupportsBatchPoll` (an upstream that reads many jobs in one
request, such as Suno's `POST /fetch {ids}`). The first poll of a secret opens a batch and waits a
short window (at most a poller tick), so that the other tasks leased in the same round join it; one
call is sent for all of them, and each waiter gets the shared reply and its own parsed progress.
A batch never mixes secrets: each task is read with the exact account that made it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from gengate.core.adaptor import Account, HttpReply, Progress, SupportsBatchPoll, TaskRef
from gengate.core.upstream import UpstreamClient

log = logging.getLogger("gengate.engine")

BatchKey = tuple[str, int, int]  # provider, channel id, secret id


@dataclass
class _Batch:
    adaptor: SupportsBatchPoll
    account: Account
    refs: list[TaskRef] = field(default_factory=list)
    waiters: list[asyncio.Future[tuple[HttpReply, Progress | None]]] = field(default_factory=list)


class PollBatcher:
    def __init__(self, upstream: UpstreamClient, window: float) -> None:
        self.upstream = upstream
        self.window = window
        self._open: dict[BatchKey, _Batch] = {}
        self._flushing: set[asyncio.Task[None]] = set()
        self.calls = 0  # upstream calls made (for tests and metrics)

    async def poll(self, adaptor: SupportsBatchPoll, account: Account, key: BatchKey,
                   ref: TaskRef) -> tuple[HttpReply, Progress | None]:
        """The upstream reply that covered `ref`, and its progress (None when the reply was not a
        readable 200 for it). Raises what the upstream client raises (NotSent, OutcomeUnknown)."""
        loop = asyncio.get_running_loop()
        batch = self._open.get(key)
        if batch is None or len(batch.refs) >= max(1, adaptor.batch_size):
            batch = _Batch(adaptor, account)
            self._open[key] = batch
            loop.call_later(self.window, self._start_flush, key, batch)
        waiter: asyncio.Future[tuple[HttpReply, Progress | None]] = loop.create_future()
        batch.refs.append(ref)
        batch.waiters.append(waiter)
        return await waiter

    def _start_flush(self, key: BatchKey, batch: _Batch) -> None:
        if self._open.get(key) is batch:
            del self._open[key]
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _flush(self, batch: _Batch) -> None:
        self.calls += 1
        try:
            reply = await self.upstream.send(batch.account, batch.adaptor.build_poll_many(batch.account, batch.refs))
        except BaseException as exc:
            for w in batch.waiters:
                if not w.done():
                    w.set_exception(exc if isinstance(exc, Exception) else RuntimeError("poll cancelled"))
            if not isinstance(exc, Exception):
                raise
            return
        parsed: dict[str, Progress] = {}
        if reply.status == 200:
            try:
                parsed = dict(batch.adaptor.parse_poll_many(reply, batch.refs))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("batch poll of %d tasks: unreadable reply (%s)", len(batch.refs), type(exc).__name__)
        for ref, w in zip(batch.refs, batch.waiters, strict=True):
            if not w.done():
                w.set_result((reply, parsed.get(ref.upstream_id or "")))
