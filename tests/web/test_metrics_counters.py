"""`/metrics` counters move: HTTP requests by family, route template (never the raw path) and status,
upstream calls by provider/channel/outcome, credits reserved and settled, channel secrets up; and
`GENGATE_METRICS_TOKEN` guards the endpoint.

client (aiohttp) → `gengate serve --sandbox` (subprocess) → its in-process Vidu emulator. Nothing is mocked.
"""

from __future__ import annotations

import re
import secrets

import pytest
from harness.metrics import sample

pytestmark = pytest.mark.timeout(180)

BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper kite"}]},
        "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}


async def scrape(http, server, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(f"{server.url}/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        return await r.text()


async def test_counters_move_with_route_templates(make_server, http, vidu) -> None:
    token = "mt-" + secrets.token_hex(6)
    server = make_server(env={"GENGATE_METRICS_TOKEN": token})
    async with http.get(f"{server.url}/metrics") as r:
        assert r.status == 401  # the token is required when set
    before = await scrape(http, server, token)
    route = "/v1/tasks/{task_id}"
    base = sample(before, "gengate_http_requests_total", route=route, status="404")
    key = server.make_key()
    raw_id = "task_" + secrets.token_hex(8)
    for _ in range(3):
        async with http.get(f"{server.url}/v1/tasks/{raw_id}", headers={"Authorization": f"Bearer {key}"}) as r:
            assert r.status == 404
    client = vidu(server, key)
    created = await client.create_ok(BODY)
    await client.wait(created["id"])
    after = await scrape(http, server, token)
    http_lines = [line for line in after.splitlines() if line.startswith("gengate_http_requests_total")]
    assert sample(after, "gengate_http_requests_total", route=route, status="404") == base + 3, http_lines
    assert raw_id not in after and str(created["id"]) not in after  # templates, never raw paths
    assert sample(after, "gengate_http_requests_total", route="/vidu/v1/tasks", status="200") >= 1
    # The in-process sandbox upstream's side is its own family with its full path, never mixed with
    # the client routes of the same shape.
    assert sample(after, "gengate_http_requests_total", family="vidu", route="/vidu/v1/tasks", status="200") == 1
    assert sample(after, "gengate_http_requests_total", family="sandbox", route="/_sandbox/vidu/vidu/v1/tasks",
                  status="200") == 1, http_lines
    assert sample(after, "gengate_http_request_duration_seconds_count", route=route) >= 3
    assert sample(after, "gengate_upstream_requests_total", provider="vidu", outcome="2xx") >= 2  # create + poll
    assert sample(after, "gengate_upstream_request_duration_seconds_count", provider="vidu") >= 2
    assert sample(after, "gengate_credits_total", kind="reserved") > sample(before, "gengate_credits_total",
                                                                             kind="reserved")
    assert sample(after, "gengate_credits_total", kind="settled") > 0
    assert sample(after, "gengate_channel_secret_up") >= 1  # the sandbox channels' secrets
    assert re.search(r"^# TYPE gengate_webhook_deliveries_total counter$", after, re.M)
