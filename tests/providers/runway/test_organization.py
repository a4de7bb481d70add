"""`GET /runway/v1/organization` and `POST /runway/v1/organization/usage` through the official
`runwayml` SDK (5.24.0) on `gengate serve --sandbox` (SQLite and PostgreSQL): the calling key as Runway's organization,
in Runway credits (10,000 gengate credits each), its tasks of the last day and its net credits per
day and model; bad dates are Runway's 400 with `issues`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import runwayml
from harness.runway import RunwayRaw, assert_runway_error, png_data_uri, sdk
from runwayml.lib import polling

pytestmark = pytest.mark.timeout(180)

CREDIT = 10_000


@pytest.fixture(scope="module")
def server(sandbox_server):
    return sandbox_server


async def _video(client: runwayml.AsyncRunwayML) -> None:
    created = await client.image_to_video.create(model="gen4_turbo", prompt_image=png_data_uri(), ratio="1280:720",
                                                 duration=5)
    assert (await created.wait_for_task_output(timeout=60)).status == "SUCCEEDED"


async def test_organization_shows_the_keys_balance_and_its_tasks_of_the_day(server, fast_polls):
    name, key = server.make_named_key(credits=1_234_567)
    client = sdk(server.url, key)
    org = await client.organization.retrieve()
    assert org.credit_balance == 123 and org.tier.max_monthly_credit_spend == 123  # whole Runway credits
    assert {"gen4_turbo", "gen4_image", "gen4.5"} <= set(org.tier.models)
    assert org.tier.models["gen4_turbo"].max_daily_generations is None  # gengate sets no per-model cap
    assert org.usage.models == {}
    await _video(client)  # 5 s of gen4_turbo: 25 Runway credits
    org = await client.organization.retrieve()
    assert server.credits(name) == 1_234_567 - 25 * CREDIT
    assert org.credit_balance == (1_234_567 - 25 * CREDIT) // CREDIT == 98
    assert org.tier.max_monthly_credit_spend == 123  # the grant, not what is left
    assert org.usage.models["gen4_turbo"].daily_generations == 1 and set(org.usage.models) == {"gen4_turbo"}


async def test_an_unlimited_key_and_a_key_limited_to_some_models(server):
    org = await sdk(server.url, server.make_key()).organization.retrieve()
    assert org.credit_balance == org.tier.max_monthly_credit_spend == 1_000_000_000
    limited = await sdk(server.url, server.make_key(credits=55_000, models="gen4_image*")).organization.retrieve()
    assert limited.credit_balance == 5  # 5.5 Runway credits: a part of one buys nothing
    assert set(limited.tier.models) == {"gen4_image", "gen4_image_turbo"}


async def test_usage_is_the_keys_net_credits_per_day_and_model(server, fast_polls):
    name, key = server.make_named_key(credits=1_000_000)
    client = sdk(server.url, key)
    await _video(client)
    # A failed image is reserved then refunded: it nets to zero on its day.
    server.upstream.fault(provider="runway", kind="fail_task", count=1, secret=server.secret)
    created = await client.text_to_image.create(model="gen4_image", prompt_text="a red kite", ratio="1920:1080")
    with pytest.raises(polling.TaskFailedError):
        await created.wait_for_task_output(timeout=60)
    await _video(sdk(server.url, server.make_key()))  # another key's task is not this key's usage
    today = datetime.now(UTC).date()
    usage = await client.organization.retrieve_usage()
    assert usage.models == ["gen4_image", "gen4_turbo"], usage
    assert [r.date for r in usage.results] == [today], usage
    used = {u.model: u.amount for u in usage.results[0].used_credits}
    assert used == {"gen4_turbo": 25, "gen4_image": 0}, used
    assert server.credits(name) == 1_000_000 - 25 * CREDIT
    later = await client.organization.retrieve_usage(start_date=today + timedelta(days=1))
    assert later.results == [] and later.models == []
    window = await client.organization.retrieve_usage(start_date=today - timedelta(days=3),
                                                      before_date=today + timedelta(days=1))
    assert [r.date for r in window.results] == [today]


@pytest.mark.parametrize(("body", "path"), [
    ({"startDate": "2025-13-01"}, ["startDate"]),
    ({"startDate": "yesterday"}, ["startDate"]),
    ({"beforeDate": 20250601}, ["beforeDate"]),
    ({"startDate": "2025-01-01", "beforeDate": "2025-06-01"}, ["beforeDate"]),  # more than 90 days
    ({"startDate": "2025-06-01", "beforeDate": "2025-06-01"}, ["beforeDate"]),  # empty window
])
async def test_bad_usage_windows_are_runway_400s(server, http, body, path):
    reply = await RunwayRaw(http, server.url, server.make_key()).request("POST", "/v1/organization/usage",
                                                                         json_body=body)
    assert_runway_error(reply, 400, issue_path=path)


async def test_usage_with_an_empty_body_and_without_a_key(server, http):
    raw = RunwayRaw(http, server.url, server.make_key())
    reply = await raw.request("POST", "/v1/organization/usage")
    assert reply.status == 200 and reply.body == {"models": [], "results": []}, reply.text
    assert_runway_error(await RunwayRaw(http, server.url, None).request("GET", "/v1/organization"), 401)
    assert_runway_error(await RunwayRaw(http, server.url, "sk-wrong").request("POST", "/v1/organization/usage",
                                                                              json_body={}), 401)
    assert_runway_error(await raw.request("DELETE", "/v1/organization"), 405)
    assert_runway_error(await raw.request("POST", "/v1/organization/usage", json_body=["2025-01-01"]), 400)
