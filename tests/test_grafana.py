"""The Grafana dashboard in deploy/grafana/ is valid JSON and queries only the metric families the
contract names (interface.md "Metrics"), so it cannot drift from what /metrics serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "gengate.json"
FAMILIES = {"gengate_http_requests_total", "gengate_http_request_duration_seconds", "gengate_upstream_requests_total",
            "gengate_upstream_request_duration_seconds", "gengate_tasks", "gengate_credits_total",
            "gengate_channel_secret_up", "gengate_webhook_deliveries_total"}


def test_the_dashboard_queries_only_contract_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert exprs and len({p["id"] for p in dash["panels"]}) == len(dash["panels"])
    used = {re.sub(r"_(bucket|count|sum)$", "", m) for e in exprs for m in re.findall(r"\bgengate_\w+", e)}
    assert used == FAMILIES, used ^ FAMILIES  # every family charted, nothing the server does not serve
