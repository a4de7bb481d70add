"""Prometheus metrics at `/metrics`: tasks by state (read at scrape time from the shared database, so
every process reports the same totals) and this process's own loop counters."""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from gengate.core import tasks as store
from gengate.db.engine import SQL_COUNT_ENV
from gengate.web.context import AppContext


def metrics_endpoint(ctx_getter: Callable[[], AppContext], poller_rounds: Callable[[], int]):
    registry = CollectorRegistry()
    tasks_by_state = Gauge("gengate_tasks", "Tasks by state", ["state"], registry=registry)
    rounds = Gauge("gengate_poller_rounds", "Poll rounds run by this process", registry=registry)
    statements = Gauge("gengate_debug_sql_statements", "Statements sent by this process before this scrape "
                       "(GENGATE_DEBUG_SQL_COUNT=1)", registry=registry) if os.environ.get(SQL_COUNT_ENV) else None

    async def metrics(request: Request) -> Response:
        ctx = ctx_getter()
        if statements is not None:
            statements.set(ctx.db.statements or 0)
        async with ctx.db.read() as conn:
            counts = await store.count_by_state(conn)
        for state, n in counts.items():
            tasks_by_state.labels(state=state).set(n)
        rounds.set(poller_rounds())
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
