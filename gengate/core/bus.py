"""Cross-process wake-ups over Redis pub/sub (`GENGATE_REDIS_URL`, interface.md "Redis").

A process announces what it changed (a task, a queued webhook, work for the pollers, keys or
channels) on one channel, `<prefix>bus`, and every other process wakes what waits on it: the streams
of that task, its webhook sender, its poller, its key and routing caches. Redis is never required:
publishing is fire-and-forget (a slow or absent Redis never blocks or fails a request), and every
waiter keeps its own periodic database check as the safety net. After a (re)connection a process
runs those checks at once (`on_resync`), since messages sent while it was away are lost.

One subscriber connection and one publishing connection per process; changes made within a few
milliseconds go out as one message (`"<origin> t:12 t:40 w q"`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("gengate.bus")

TASK = "t"  # a task changed: `t:<task id>` (the database id, the same in every process)
WEBHOOK = "w"  # a webhook delivery was queued
POLLER = "q"  # work may be due now (a task queued, a slot freed)
CONFIG = "c"  # keys or channels changed

BATCH_WINDOW = 0.005  # seconds a publish waits for more changes to send with it
MAX_PENDING = 10_000  # items kept while Redis is slow; beyond it they are dropped (the fallback covers)
PING_EVERY = 10.0  # an idle subscriber pings this often, and reconnects when nothing came back for 3x
BACKOFF_MAX = 30.0

Handler = Callable[[str], None]


class Bus:
    """The process's end of the bus. Without a URL it does nothing (`enabled` is False)."""

    def __init__(self, url: str | None, prefix: str) -> None:
        self.url = url
        self.channel = f"{prefix}bus"
        self.origin = secrets.token_hex(6)  # a process ignores its own messages: it woke itself already
        self.connected = False  # subscribed right now
        self._handlers: dict[str, list[Handler]] = {}
        self._resync: list[Callable[[], None]] = []
        self._pending: dict[str, None] = {}  # ordered set of items not yet published
        self._has_pending = asyncio.Event()
        self._warned = False
        self._clients: list[Any] = []

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def on(self, kind: str, handler: Handler) -> None:
        """Call `handler(argument)` for every `kind` item another process publishes."""
        self._handlers.setdefault(kind, []).append(handler)

    def on_resync(self, handler: Callable[[], None]) -> None:
        """Call `handler()` after every (re)subscription: what was published meanwhile is lost."""
        self._resync.append(handler)

    def throttled(self, kind: str, wake: Callable[[], None], every: float) -> Callable[[], None]:
        """`wake` (a local loop's wake-up) that also publishes `kind`, at most once per `every` s:
        a busy process frees slots many times a second, and each message costs every other process
        a round of its loop, which ticks on its own anyway."""
        last = 0.0

        def both() -> None:
            nonlocal last
            wake()
            now = time.monotonic()
            if now - last >= every:
                last = now
                self.publish(kind)

        return both

    def publish(self, kind: str, arg: str | int = "") -> None:
        """Queue one item for the other processes; returns at once, never raises."""
        if not self.url:
            return
        if len(self._pending) >= MAX_PENDING:
            self._pending.clear()
        self._pending[f"{kind}:{arg}" if arg != "" else kind] = None
        self._has_pending.set()

    # ------------------------------------------------------------------ loops
    async def run(self) -> None:
        """The subscriber and the publisher; returns only when cancelled (or at once without a URL)."""
        if not self.url:
            return
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # We reconnect ourselves (and resync after it), so the client must not retry behind our back.
        once = {"retry": Retry(NoBackoff(), 0), "socket_connect_timeout": 2.0}
        # No socket timeout on the subscriber (it waits for messages); its liveness is our own pings.
        # Its name shows in CLIENT LIST (and lets a test cut this very connection).
        sub = aioredis.Redis.from_url(self.url, socket_keepalive=True, client_name=f"gengate-bus-{self.origin}",
                                      **once)
        pub = aioredis.Redis.from_url(self.url, socket_timeout=2.0, **once)
        self._clients = [sub, pub]
        await asyncio.gather(self._subscribe_loop(sub), self._publish_loop(pub))

    async def close(self) -> None:
        for client in self._clients:
            try:
                await client.aclose()
            except Exception:  # closing a connection that is already broken
                pass
        self._clients = []

    async def _publish_loop(self, client: Any) -> None:
        delay = 0.5
        while True:
            await self._has_pending.wait()
            await asyncio.sleep(BATCH_WINDOW)
            self._has_pending.clear()
            items, self._pending = list(self._pending), {}
            if not items:
                continue
            try:
                await asyncio.wait_for(client.publish(self.channel, " ".join([self.origin, *items])), 3.0)
                delay = 0.5
            except Exception as exc:  # Redis away: the items are dropped, the database checks cover them
                self._trouble("publish", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _subscribe_loop(self, client: Any) -> None:
        delay = 0.5
        while True:
            pubsub = client.pubsub()
            try:
                await asyncio.wait_for(pubsub.subscribe(self.channel), 5.0)
                self.connected = True
                if self._warned:
                    log.info("bus: Redis reachable again; cross-process wake-ups resumed")
                    self._warned = False
                delay = 0.5
                self._fire_resync()
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, reset, timed out: try again later
                self._trouble("subscribe", exc)
            finally:
                self.connected = False
                try:
                    await pubsub.aclose()
                except Exception:  # the connection is broken anyway
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _listen(self, pubsub: Any) -> None:
        heard = pinged = time.monotonic()
        while True:
            msg = await pubsub.get_message(timeout=1.0)
            now = time.monotonic()
            if msg is not None:
                heard = now
                if msg.get("type") == "message":
                    self._dispatch(msg["data"])
            if now - heard > 3 * PING_EVERY:
                raise ConnectionError("no reply from Redis")
            if now - max(heard, pinged) > PING_EVERY:
                await pubsub.ping()
                pinged = now

    def _dispatch(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        origin, *items = text.split(" ")
        if origin == self.origin:
            return
        for item in items:
            kind, _, arg = item.partition(":")
            for handler in self._handlers.get(kind, ()):
                try:
                    handler(arg)
                except Exception:  # one bad handler must not end the subscription
                    log.exception("bus: handler for %r failed", kind)

    def _fire_resync(self) -> None:
        for handler in self._resync:
            try:
                handler()
            except Exception:
                log.exception("bus: resync handler failed")

    def _trouble(self, what: str, exc: BaseException) -> None:
        """One warning per outage, not one per attempt (or per request)."""
        if not self._warned:
            log.warning("bus: Redis unreachable (%s: %s); cross-process wake-ups fall back to the database",
                        what, type(exc).__name__)
            self._warned = True


async def announce(url: str, prefix: str, kind: str) -> bool:
    """Publish one item from a short-lived process (the CLI); False when Redis did not take it."""
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = aioredis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0, retry=Retry(NoBackoff(), 0))
    try:
        await asyncio.wait_for(client.publish(f"{prefix}bus", f"{secrets.token_hex(6)} {kind}"), 2.0)
        return True
    except Exception:  # the change is committed; servers see it by their own check within seconds
        return False
    finally:
        try:
            await client.aclose()
        except Exception:
            pass
