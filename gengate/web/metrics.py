"""Prometheus metrics at `/metrics` (interface.md "Metrics").

- `gengate_tasks{provider,state}` is read from the shared database at each scrape (a status with no
  task reads 0), so every process reports the same totals;
- `gengate_channel_secret_up{channel,secret}` is read from the routing table (secret = fingerprint):
  1 when the channel and the secret are enabled and the secret is not cooling down (its backoff after
  upstream failures or a 429, read from the database at each scrape), else 0;
- this process's counters (HTTP requests by route template, upstream calls, credits, webhook
  deliveries) live in `gengate.core.metrics.REGISTRY`; `MetricsMiddleware` counts HTTP requests with
  the route template Starlette matched (`/v1/tasks/{task_id}`), never the raw path.
Optional `GENGATE_METRICS_TOKEN`: then `/metrics` takes it as Bearer.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gengate.core import metrics as core_metrics
from gengate.core import tasks as store
from gengate.core.crypto import fingerprint
from gengate.core.states import UNIFIED_STATUS
from gengate.db.engine import SQL_COUNT_ENV
from gengate.web.context import AppContext
from gengate.web.routing import FallbackRoute

SANDBOX_PREFIX = "/_sandbox/"
STATUSES = tuple(dict.fromkeys(UNIFIED_STATUS.values()))  # queued, in_progress, succeeded, failed, cancelled
_STATUS_OF = {state.value: status for state, status in UNIFIED_STATUS.items()}


class TaskGauge(Collector):
    """`gengate_tasks{provider,state}` from the last database read: every status of every provider."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def update(self, providers: list[str], rows: dict[tuple[str, str], int]) -> None:
        counts = {(p, s): 0 for p in providers for s in STATUSES}
        for (provider, state), n in rows.items():
            status = _STATUS_OF.get(state, state)
            counts[(provider, status)] = counts.get((provider, status), 0) + n
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("gengate_tasks", "Tasks by provider and unified status (from the database)",
                                   labels=["provider", "state"])
        for (provider, state), n in sorted(self.counts.items()):
            family.add_metric([provider, state], n)
        yield family


class SecretGauge(Collector):
    """`gengate_channel_secret_up`: 1 when a secret of a live, enabled channel is enabled and not
    cooling down (`cooling`: the ids backing off at the last scrape)."""

    def __init__(self, ctx_getter: Callable[[], AppContext]) -> None:
        self.ctx_getter = ctx_getter
        self.cooling: set[int] = set()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("gengate_channel_secret_up", "1 when a channel's secret takes new tasks",
                                   labels=["channel", "secret"])
        try:
            router = self.ctx_getter().router
            channels = list(router.channels.values())
        except AttributeError:  # not started yet
            channels = []
        for channel in channels:
            if channel.deleted:
                continue
            for secret in channel.secrets:
                up = channel.enabled and secret.enabled and secret.id not in self.cooling
                family.add_metric([channel.name, fingerprint(secret.value)], 1 if up else 0)
        yield family


class _ProcessCounters(Collector):
    """This process's counters (gengate.core.metrics), rendered inside each app's registry."""

    def collect(self) -> Iterator[Any]:
        yield from core_metrics.REGISTRY.collect()


def route_labels(scope: Scope) -> tuple[str, str]:
    """(family, route template) of the route that answered; ("gengate", "unmatched") for none."""
    route = scope.get("route")
    if route is None:
        return "gengate", "unmatched"
    path = scope.get("path", "")
    if path.startswith(SANDBOX_PREFIX):  # the in-process emulators: the upstream side, not a client's call
        provider = path[len(SANDBOX_PREFIX):].partition("/")[0]
        return "sandbox", f"{SANDBOX_PREFIX}{provider}{getattr(route, 'path', '')}"
    if isinstance(route, FallbackRoute):
        return (route.name or "").removesuffix("_fallback") or "gengate", route.path
    return getattr(route, "family", None) or "gengate", getattr(route, "path", "unmatched")


class MetricsMiddleware:
    """Counts every HTTP request by family, route template and status, and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            family, route = route_labels(scope)
            core_metrics.HTTP_REQUESTS.labels(family, route, str(status)).inc()
            core_metrics.HTTP_DURATION.labels(family, route).observe(time.monotonic() - started)


def metrics_endpoint(ctx_getter: Callable[[], AppContext], poller_rounds: Callable[[], int]):
    registry = CollectorRegistry()
    tasks_gauge = TaskGauge()
    registry.register(tasks_gauge)
    secrets_gauge = SecretGauge(ctx_getter)
    registry.register(secrets_gauge)
    registry.register(_ProcessCounters())
    rounds = Gauge("gengate_poller_rounds", "Poll rounds run by this process", registry=registry)
    statements = Gauge("gengate_debug_sql_statements", "Statements sent by this process before this scrape "
                       "(GENGATE_DEBUG_SQL_COUNT=1)", registry=registry) if os.environ.get(SQL_COUNT_ENV) else None
    token = os.environ.get("GENGATE_METRICS_TOKEN")

    async def metrics(request: Request) -> Response:
        if token:
            presented = request.headers.get("authorization", "")
            if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
                return Response("unauthorized\n", status_code=401, media_type="text/plain",
                                headers={"WWW-Authenticate": "Bearer"})
        ctx = ctx_getter()
        if statements is not None:
            statements.set(ctx.db.statements or 0)
        rows = await ctx.db.run_read(store.count_by_provider_state)
        now = time.time()
        cooling = await ctx.db.run_read(lambda conn: core_metrics.cooling_secrets(conn, now))
        # No await between the updates and the rendering: concurrent scrapes cannot interleave.
        tasks_gauge.update(sorted(ctx.adaptors), rows)
        secrets_gauge.cooling = cooling
        rounds.set(poller_rounds())
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
