"""This process's Prometheus counters (interface.md "Metrics"), in one registry that `/metrics` renders.

The core counts here (upstream calls, credits, webhook deliveries); the web layer counts HTTP
requests (gengate.web.metrics). Gauges that describe shared state (`gengate_tasks`,
`gengate_channel_secret_up`) are read at scrape time instead, so every process reports the same values.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gengate.db.models import channel_secrets

REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Counter("gengate_http_requests", "HTTP requests answered, by route template",
                        ["family", "route", "status"], registry=REGISTRY)
HTTP_DURATION = Histogram("gengate_http_request_duration_seconds", "HTTP request duration, by route template",
                          ["family", "route"], registry=REGISTRY)
UPSTREAM_REQUESTS = Counter("gengate_upstream_requests", "Requests sent upstream (outcome: 2xx, 4xx, 5xx, "
                            "not_sent, unknown)", ["provider", "channel", "outcome"], registry=REGISTRY)
UPSTREAM_DURATION = Histogram("gengate_upstream_request_duration_seconds", "Upstream request duration",
                              ["provider"], registry=REGISTRY)
CREDITS = Counter("gengate_credits", "Credits moved (reserved, settled, refunded)", ["kind"], registry=REGISTRY)
WEBHOOKS = Counter("gengate_webhook_deliveries", "Webhook delivery attempts (delivered, failed)", ["outcome"],
                   registry=REGISTRY)

for _kind in ("reserved", "settled", "refunded"):
    CREDITS.labels(_kind)

# Children of the hot path's series, looked up once (a `labels()` call builds a key and takes a lock).
CREDITS_RESERVED = CREDITS.labels("reserved")
CREDITS_SETTLED = CREDITS.labels("settled")
CREDITS_REFUNDED = CREDITS.labels("refunded")


class UpstreamMeter:
    """The upstream series of one provider, their children cached by (channel, outcome): counting a
    call is one dict lookup, an increment and an observation."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.duration = UPSTREAM_DURATION.labels(provider)
        self._counts: dict[tuple[str, str], Any] = {}

    def count(self, channel: str, outcome: str, seconds: float) -> None:
        child = self._counts.get((channel, outcome))
        if child is None:
            if len(self._counts) >= 4096:  # channels come and go (renamed, deleted): stay bounded
                self._counts.clear()
            child = self._counts[(channel, outcome)] = UPSTREAM_REQUESTS.labels(self.provider, channel, outcome)
        child.inc()
        self.duration.observe(seconds)


async def cooling_secrets(conn: AsyncConnection, now: float) -> set[int]:
    """Ids of the secrets backing off right now (`backoff_until` ahead): they take no new task, so
    `gengate_channel_secret_up` reads 0 for them until the cooldown ends."""
    rows = await conn.execute(select(channel_secrets.c.id).where(channel_secrets.c.backoff_until > now))
    return {r.id for r in rows}


def upstream_outcome(status: int | None, error: str | None = None) -> str:
    if status is None:
        return error or "unknown"
    return f"{status // 100}xx"
