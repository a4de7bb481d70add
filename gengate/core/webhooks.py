"""Signed webhooks (Standard Webhooks): enqueue one delivery per provider state change, in the same
transaction as the change; deliver in order per task, retry with exponential backoff for 24 h.

Signature: `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`, where the key is the
base64 part of the client key's `whsec_` secret. Deliveries are rows: a restart resumes them, and a
delivery that got a 2xx is never sent again.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

from sqlalchemy import and_, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.core import metrics
from gengate.core.crypto import SecretBox
from gengate.db.engine import Database
from gengate.db.models import keys, webhook_deliveries

log = logging.getLogger("gengate.webhooks")
W = webhook_deliveries
RETRY_FOR = 24 * 3600.0


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


async def enqueue(conn: AsyncConnection, *, task_id: int, key_id: int, url: str, state: str,
                  payload: dict[str, Any]) -> bool:
    """Add a delivery if the provider-visible state differs from the last one enqueued for the task."""
    last = await conn.scalar(select(W.c.state).where(W.c.task_id == task_id).order_by(W.c.id.desc()).limit(1))
    if last == state:
        return False
    now = time.time()
    await conn.execute(insert(W).values(
        task_id=task_id, key_id=key_id, webhook_id="msg_" + secrets.token_urlsafe(18), url=url, state=state,
        payload=json.dumps(payload, separators=(",", ":")), next_attempt_at=now, created_at=now))
    return True


class WebhookSender:
    """The delivery loop. Any number of processes run it; a delivery is leased by one at a time."""

    def __init__(self, db: Database, box: SecretBox, client: Any, *, tick: float = 0.2,
                 backoff_base: float = 1.0, backoff_max: float = 3600.0, timeout: float = 10.0) -> None:
        self.db, self.box, self.client = db, box, client
        self.tick, self.backoff_base, self.backoff_max, self.timeout = tick, backoff_base, backoff_max, timeout
        self._wake = asyncio.Event()
        self._secrets: dict[int, str] = {}

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                rows = await self._lease(50)
            except (DBAPIError, OSError) as exc:  # the database is away: the loop waits, it does not die
                log.warning("webhooks: could not lease deliveries (%s); retrying", type(exc).__name__)
                await asyncio.sleep(max(self.tick, 1.0))
                continue
            if rows:
                await asyncio.gather(*(self._deliver(r) for r in rows))
            else:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.tick)
                except TimeoutError:
                    pass

    async def _lease(self, limit: int) -> list[Any]:
        now = time.time()
        d, earlier = W.alias("d"), W.alias("earlier")
        # A delivery waits while an earlier one of the same task is still undelivered: state order.
        blocked = (select(earlier.c.id).where(earlier.c.task_id == d.c.task_id, earlier.c.id < d.c.id,
                                              earlier.c.delivered_at.is_(None), earlier.c.dead.is_(False))
                   .correlate(d).exists())
        due = (select(d.c.id).where(d.c.next_attempt_at.is_not(None), d.c.next_attempt_at <= now,
                                    (d.c.lease_until.is_(None)) | (d.c.lease_until < now), ~blocked)
               .order_by(d.c.id).limit(limit))
        if not self.db.is_sqlite:
            due = due.with_for_update(skip_locked=True, of=d)
        async with self.db.write() as conn:
            res = await conn.execute(update(W).where(W.c.id.in_(due.scalar_subquery()))
                                     .values(lease_until=now + self.timeout + 5).returning(*W.c))
            return list(res.all())

    async def _secret(self, key_id: int) -> str:
        if key_id not in self._secrets:
            async with self.db.read() as conn:
                enc = await conn.scalar(select(keys.c.webhook_secret_enc).where(keys.c.id == key_id))
            self._secrets[key_id] = self.box.open(enc)
        return self._secrets[key_id]

    async def _deliver(self, row: Any) -> None:
        body = row.payload.encode()
        ts = int(time.time())
        headers = {"content-type": "application/json", "user-agent": "gengate-webhooks/1",
                   "webhook-id": row.webhook_id, "webhook-timestamp": str(ts),
                   "webhook-signature": sign(await self._secret(row.key_id), row.webhook_id, ts, body)}
        status: int | None = None
        error: str | None = None
        try:
            resp = await self.client.request("POST", row.url, headers=headers, data=body,
                                             max_bytes=64 * 1024, timeout=self.timeout, follow_redirects=False)
            status = resp.status
        except Exception as exc:  # refused address, timeout, connection error: all retried
            error = f"{type(exc).__name__}: {exc}"[:300]
        now = time.time()
        ok = status is not None and 200 <= status < 300
        metrics.WEBHOOKS.labels("delivered" if ok else "failed").inc()
        values: dict[str, Any] = {"attempts": row.attempts + 1, "last_status": status, "last_error": error,
                                  "lease_until": None}
        if ok:
            values.update(delivered_at=now, next_attempt_at=None)
        elif now - row.created_at >= RETRY_FOR:
            values.update(dead=True, next_attempt_at=None)
            log.warning("webhook %s for task %s given up after %d attempts", row.webhook_id, row.task_id,
                        row.attempts + 1)
        else:
            delay = min(self.backoff_base * (2 ** row.attempts), self.backoff_max)
            values["next_attempt_at"] = now + delay
        async with self.db.write() as conn:
            await conn.execute(update(W).where(and_(W.c.id == row.id, W.c.delivered_at.is_(None))).values(**values))
        if ok:
            self.wake()  # the task's next delivery may go now
