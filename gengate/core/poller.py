"""The background loop that leases due tasks and hands each to the engine.

Any number of processes run it against one database: a task is leased by exactly one of them, and an
expired lease (its holder died) is taken over. When nothing is due it sleeps a tick, or less when this
process queued work or freed a slot.
"""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy.exc import DBAPIError

from gengate.core import tasks as store
from gengate.core.engine import TaskEngine

log = logging.getLogger("gengate.poller")


class Poller:
    def __init__(self, engine: TaskEngine, *, tick: float, batch: int, lease_seconds: float,
                 concurrency: int = 128) -> None:
        self.engine = engine
        self.tick = tick
        self.batch = batch
        self.lease_seconds = lease_seconds
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(concurrency)
        self._inflight: set[asyncio.Task[None]] = set()
        self.rounds = 0
        self.last_round_at = 0.0
        # Set when a round was cut short by busy handlers, not by a lack of due work: the round after
        # starts as soon as a quarter of a batch of handlers is free, not a whole tick later.
        self._want_slots = False
        engine.on_queued = self.wake

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        db = self.engine.db
        while True:
            self._wake.clear()  # before leasing, so a wake-up during the round is not lost
            free = self._sem._value  # only lease what we can start now
            asked = min(self.batch, free)
            rows = []
            if asked > 0:
                try:
                    async with db.write() as conn:
                        rows = await store.lease_due(conn, db.dialect, self.engine.owner, time.time(),
                                                     self.lease_seconds, asked)
                except (DBAPIError, OSError) as exc:  # the database is away: the loop waits, it does not die
                    log.warning("poller: could not lease due tasks (%s); retrying", type(exc).__name__)
                    await asyncio.sleep(max(self.tick, 1.0))
                    continue
            self.rounds += 1
            self.last_round_at = time.time()  # after the lease worked: /healthz sees a stalled database
            for row in rows:
                await self._sem.acquire()
                t = asyncio.create_task(self._handle(row))
                self._inflight.add(t)
                t.add_done_callback(self._inflight.discard)
            # More may be due when the round got all it asked for but asked less than a batch.
            self._want_slots = asked < self.batch and len(rows) == asked
            if len(rows) < self.batch:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.tick)
                except TimeoutError:
                    pass

    async def _handle(self, row: object) -> None:
        renew = asyncio.create_task(self._keep_lease(row.id))  # type: ignore[attr-defined]
        try:
            await self.engine.handle(row)  # type: ignore[arg-type]
        except Exception:
            log.exception("poller: task handling failed")
        finally:
            renew.cancel()
            self._sem.release()
            if self._want_slots and self._sem._value >= max(1, self.batch // 4):
                self._want_slots = False
                self._wake.set()

    async def _keep_lease(self, task_id: int) -> None:
        """Renew the lease while a long step (a large re-host) runs, so no other process takes the
        task over from a live holder."""
        db = self.engine.db
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                async with db.write() as conn:
                    await store.renew_lease(conn, task_id, self.engine.owner, time.time() + self.lease_seconds)
            except Exception:
                log.exception("poller: lease renewal failed")

    async def drain(self, grace: float = 5.0) -> None:
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=grace)
