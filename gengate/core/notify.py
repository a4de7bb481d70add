"""Wakes the streams waiting on a task when it changes.

A change made in this process wakes its waiters at once; with Redis (gengate.core.bus) so does a
change made by another process. Without it, those are found by one batched query per `interval`
(1 s) over every task this process has open streams on (not one query per stream), so 1,000 idle
streams cost one small query a second. While the bus is up that query is only a safety net, run
`RELAXED` times less often, and at once after the bus reconnects (`check_now`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from gengate.core.bus import TASK, Bus

log = logging.getLogger("gengate.notify")
RELAXED = 5


class Notifier:
    def __init__(self, versions: Callable[[list[int]], Awaitable[dict[int, float]]],
                 interval: float = 1.0, bus: Bus | None = None) -> None:
        self._versions = versions
        self._interval = interval
        self._bus = bus or Bus(None, "")
        self._bus.on(TASK, lambda arg: self.woken(int(arg)))
        self._bus.on_resync(self.check_now)
        self._check = asyncio.Event()
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._seen: dict[int, float] = {}

    def changed(self, task_id: int) -> None:
        """This process changed the task: wake its streams here and in every other process."""
        self.woken(task_id)
        self._bus.publish(TASK, task_id)

    def woken(self, task_id: int) -> None:
        """Wake this process's streams of the task."""
        for ev in self._waiters.get(task_id, ()):
            ev.set()

    def subscribe(self, task_id: int, version: float) -> asyncio.Event:
        ev = asyncio.Event()
        self._waiters.setdefault(task_id, set()).add(ev)
        self._seen.setdefault(task_id, version)
        return ev

    def unsubscribe(self, task_id: int, ev: asyncio.Event) -> None:
        waiters = self._waiters.get(task_id)
        if waiters is not None:
            waiters.discard(ev)
            if not waiters:
                del self._waiters[task_id]
                self._seen.pop(task_id, None)

    def seen(self, task_id: int, version: float) -> None:
        self._seen[task_id] = version

    def check_now(self) -> None:
        """Run the batched check without waiting for the interval (changes may have been missed)."""
        self._check.set()

    async def run(self) -> None:
        while True:
            wait = self._interval * (RELAXED if self._bus.connected else 1)
            try:
                await asyncio.wait_for(self._check.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._check.clear()
            ids = list(self._waiters)
            if not ids:
                continue
            try:
                current = await self._versions(ids)
            except Exception:  # a database hiccup must not end every stream
                log.exception("batched change check failed")
                continue
            for task_id, version in current.items():
                if version != self._seen.get(task_id):
                    self._seen[task_id] = version
                    self.woken(task_id)
