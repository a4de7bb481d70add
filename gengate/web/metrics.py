"""Prometheus metrics at `/metrics`: tasks by provider and unified status (read at scrape time from the
shared database, so every process reports the same totals) and this process's own loop counters.

`gengate_tasks` is rebuilt from the database at each scrape: a status with no task reads 0 (a gauge
that was only ever `set` kept its last value after the database had none). The other families of
interface.md "Metrics" are declared so that they appear from the first scrape; their counting lands
with the metrics issue.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from gengate.core import tasks as store
from gengate.core.states import UNIFIED_STATUS
from gengate.db.engine import SQL_COUNT_ENV
from gengate.web.context import AppContext

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


def _declare_families(registry: CollectorRegistry) -> None:
    Counter("gengate_http_requests", "HTTP requests answered", ["family", "route", "status"], registry=registry)
    Histogram("gengate_http_request_duration_seconds", "HTTP request duration", ["family", "route"],
              registry=registry)
    Counter("gengate_upstream_requests", "Requests sent upstream", ["provider", "channel", "outcome"],
            registry=registry)
    Histogram("gengate_upstream_request_duration_seconds", "Upstream request duration", ["provider"],
              registry=registry)
    Counter("gengate_credits", "Credits moved by kind", ["kind"], registry=registry)
    Gauge("gengate_channel_secret_up", "1 when a channel's secret takes new tasks", ["channel", "secret"],
          registry=registry)
    Counter("gengate_webhook_deliveries", "Webhook delivery attempts", ["outcome"], registry=registry)


def metrics_endpoint(ctx_getter: Callable[[], AppContext], poller_rounds: Callable[[], int]):
    registry = CollectorRegistry()
    tasks_gauge = TaskGauge()
    registry.register(tasks_gauge)
    _declare_families(registry)
    rounds = Gauge("gengate_poller_rounds", "Poll rounds run by this process", registry=registry)
    statements = Gauge("gengate_debug_sql_statements", "Statements sent by this process before this scrape "
                       "(GENGATE_DEBUG_SQL_COUNT=1)", registry=registry) if os.environ.get(SQL_COUNT_ENV) else None

    async def metrics(request: Request) -> Response:
        ctx = ctx_getter()
        if statements is not None:
            statements.set(ctx.db.statements or 0)
        rows = await ctx.db.run_read(store.count_by_provider_state)
        # No await between the update and the rendering: concurrent scrapes cannot interleave.
        tasks_gauge.update(sorted(ctx.adaptors), rows)
        rounds.set(poller_rounds())
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
