"""Wakes the streams waiting on a task when it changes.

A change made in this process wakes its waiters at once. Changes made by other processes are found by
one batched query per second over every task this process has open streams on (not one query per
stream), so 1,000 idle streams cost one small query a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("gengate.notify")


class Notifier:
    def __init__(self, versions: Callable[[list[int]], Awaitable[dict[int, float]]],
                 interval: float = 1.0) -> None:
        self._versions = versions
        self._interval = interval
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._seen: dict[int, float] = {}

    def changed(self, task_id: int) -> None:
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

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
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
                    self.changed(task_id)
