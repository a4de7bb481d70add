"""The operator's web UI at `/admin/` in a real browser (Chromium through Playwright) against a real
`gengate serve --sandbox` subprocess: sign-in with Enter, channels and their test, keys (create, shown
once, top up, revoke), a task followed live to its end, usage charts, the request log, and no request
to any host but the gateway. One browser for the module; each test has its own browser context.

Skipped when Chromium (/usr/bin/chromium) or Playwright is missing, failed instead under
GENGATE_TEST_REQUIRE_SERVICES=1 (as CI runs)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from harness.services import service_unavailable
from yarl import URL

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # the test extra not installed
    async_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.timeout(180)

CHROMIUM = os.environ.get("GENGATE_TEST_CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = os.access(CHROMIUM, os.X_OK)
VIDU_BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat at dusk"}]},
             "settings": {"duration": 4, "model": "vidu-1"}}
WAIT_MS = 20_000


@pytest.fixture(scope="module")
def server(make_server: Any) -> Any:
    """One sandbox server on SQLite for the module (the UI only reads the admin API; the API's own
    tests cover both databases)."""
    return make_server()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if async_playwright is None:
        service_unavailable("playwright is not installed (pip install the test extra)")
    if not HAVE_CHROMIUM:
        service_unavailable(f"Chromium not installed at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


class Recorded:
    """A page and every URL it requested."""

    def __init__(self, page: Page) -> None:
        self.page, self.urls = page, []
        page.on("request", lambda request: self.urls.append(request.url))


@pytest.fixture
async def ui(browser: Browser, server: Any) -> AsyncIterator[Recorded]:
    """A fresh browser context (its own sessionStorage) on the gateway's `/admin`; after the test, no
    script error happened and every request went to the gateway itself."""
    context = await browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 800})
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    recorded = Recorded(page)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield recorded
        assert not errors, errors  # no uncaught script error in any view
        own = urlsplit(server.url).netloc
        network = [u for u in recorded.urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
        assert [u for u in network if urlsplit(u).netloc != own] == [], network  # the gateway only
    finally:
        await context.close()


async def sign_in(page: Page, token: str) -> None:
    await page.goto("/admin")  # redirected to /admin/
    field = page.locator("input[type=password]")
    await field.fill(token)
    await field.press("Enter")


async def admin_call(server: Any, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{server.url}/admin/api{path}", json=body,
            headers={"Authorization": f"Bearer {server.admin_token}"}) as resp:
        assert resp.status < 300, (resp.status, await resp.text())
        return await resp.json()


async def status_with_key(server: Any, key: str, path: str = "/v1/models") -> int:
    async with aiohttp.ClientSession() as http, http.get(
            server.url + path, headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status


async def create_vidu_task(server: Any, key: str) -> str:
    async with aiohttp.ClientSession() as http, http.post(
            f"{server.url}/vidu/v1/tasks", json=VIDU_BODY, headers={"Authorization": f"Token {key}"}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return str(body["id"])


async def test_the_page_is_public_static_and_the_api_is_not(server: Any) -> None:
    """No browser needed: `/admin` redirects to `/admin/`, the files need no key and carry their type,
    revalidation caching and a CSP that allows no other host; `/admin/api` still needs the token."""
    key = server.make_key()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/admin", allow_redirects=False) as resp:
            assert resp.status in (301, 302, 307, 308)
            assert urlsplit(str(resp.url.join(URL(resp.headers["Location"])))).path == "/admin/"
        seen: dict[str, str] = {}
        for path, kind in (("/admin/", "text/html"), ("/admin/app.js", "text/javascript"),
                           ("/admin/app.css", "text/css"), ("/admin/chart.js", "text/javascript")):
            async with http.get(server.url + path) as resp:  # no Authorization at all
                body = await resp.text()
                assert resp.status == 200, (path, resp.status, body)
                assert resp.headers["Content-Type"].startswith(kind), (path, resp.headers["Content-Type"])
                assert resp.headers["Cache-Control"] == "no-cache" and resp.headers["ETag"]
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
                assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
                assert "http://" not in body.replace(server.url, "") and "https://" not in body, path
                seen[path] = resp.headers["ETag"]
        async with http.get(server.url + "/admin/app.js", headers={"If-None-Match": seen["/admin/app.js"]}) as resp:
            assert resp.status == 304
        async with http.get(server.url + "/admin/", headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 200  # a client key changes nothing on the public page
        for missing in ("/admin/nope.js", "/admin/pages.py", "/admin/..%2Fpages.py", "/admin/.hidden.js"):
            async with http.get(server.url + missing) as resp:
                assert resp.status == 404, missing
        async with http.get(server.url + "/admin/api/keys", headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 401  # a client key is never an admin token


async def test_wrong_token_shows_the_api_error(ui: Recorded, server: Any) -> None:
    await sign_in(ui.page, server.admin_token + "-wrong")
    error = ui.page.locator("#signin-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("admin token")  # the API's own message
    assert urlsplit(ui.page.url).path == "/admin/"
    await expect(ui.page.get_by_role("link", name="Channels")).to_be_hidden()
    assert await ui.page.evaluate("sessionStorage.length") == 0


async def test_sign_in_with_enter_shows_channel_names_and_tests_a_channel(ui: Recorded, server: Any) -> None:
    channels = (await admin_call(server, "GET", "/channels?limit=500"))["data"]
    assert channels, "the sandbox has channels"
    await sign_in(ui.page, server.admin_token)
    page = ui.page
    await expect(page.get_by_role("link", name="Channels")).to_be_visible()
    await expect(page.locator(".channel-name")).to_have_count(len(channels))
    assert sorted(await page.locator(".channel-name").all_inner_texts()) == sorted(c["name"] for c in channels)
    vidu = next(c for c in channels if c["provider"] == "vidu")
    card = page.locator(f"[data-channel='{vidu['id']}']")
    await expect(card.locator("table.secrets code").first).to_have_text(vidu["secrets"][0]["fingerprint"])
    await expect(card).to_contain_text("ok")
    await card.get_by_role("button", name="Test").click()
    result = card.locator(".test-result")
    await expect(result).to_contain_text("Test passed")
    await expect(result.locator("td").nth(2)).to_contain_text("ms")
    # a reload keeps the session (sessionStorage); sign-out forgets it
    await page.reload()
    await expect(page.locator(".channel-name").first).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("input[type=password]")).to_be_visible()
    assert await page.evaluate("sessionStorage.length") == 0


async def test_create_a_key_then_top_it_up_and_revoke_it(ui: Recorded, server: Any) -> None:
    await sign_in(ui.page, server.admin_token)
    page = ui.page
    await page.get_by_role("link", name="Keys").click()
    await page.get_by_role("button", name="Create key").click()
    dialog = page.locator("dialog[open]")
    name = f"ui-key-{int(time.time() * 1000)}"
    await dialog.get_by_label("Name").fill(name)
    await dialog.get_by_label("Credits").fill("1000")
    await dialog.get_by_role("button", name="Create key").click()
    await expect(dialog).to_have_count(0)
    shown = page.locator(".new-key .secret-value")
    key = await shown.input_value()
    assert key.startswith("sk-"), key
    assert await status_with_key(server, key) == 200  # the key shown works against the API
    await page.locator(".new-key").get_by_role("button", name="Copy").click()
    await expect(page.locator(".new-key")).to_contain_text("Copied")

    row = page.locator("tr", has=page.locator(".key-name", has_text=name))
    await expect(row).to_contain_text("active")
    await row.get_by_role("button", name="Top up").click()
    await page.locator("dialog[open]").get_by_label("Credits to add").fill("250")
    await page.locator("dialog[open]").get_by_role("button", name="Add credits").click()
    await expect(row).to_contain_text("1,250")
    keys = (await admin_call(server, "GET", "/keys?limit=500"))["data"]
    assert next(k for k in keys if k["name"] == name)["credits"] == 1250

    await row.get_by_role("button", name="Limits").click()
    limits = page.locator("dialog[open]")
    await limits.get_by_label("Requests per minute").fill("30")
    await limits.get_by_label("Models").fill("gpt-4o-mini, vidu-*")
    await limits.get_by_role("button", name="Save").click()
    await expect(row).to_contain_text("gpt-4o-mini, vidu-*")
    await expect(row.locator("td").nth(6)).to_have_text("30")
    stored = next(k for k in (await admin_call(server, "GET", "/keys?limit=500"))["data"] if k["name"] == name)
    assert stored["rpm"] == 30 and stored["models"] == ["gpt-4o-mini", "vidu-*"] and stored["credits"] == 1250

    await row.get_by_role("button", name="Disable").click()
    await expect(row).to_contain_text("disabled")
    await row.get_by_role("button", name="Enable").click()
    await expect(row).to_contain_text("active")

    await row.get_by_role("button", name="Revoke").click()
    await row.get_by_role("button", name="Confirm revoke").click()  # a destructive action takes two clicks
    await expect(row).to_contain_text("revoked")
    deadline = time.monotonic() + 3  # the contract allows 2 s to reach every process
    while await status_with_key(server, key) != 401:
        assert time.monotonic() < deadline, "the revoked key still works"
        await asyncio.sleep(0.2)


async def test_add_a_channel_test_disable_enable_and_delete_it(ui: Recorded, server: Any) -> None:
    name = f"ui-vidu-{int(time.time() * 1000)}"
    good, bad = server.secret, "sk-not-the-upstream-secret"
    await sign_in(ui.page, server.admin_token)
    page = ui.page
    await page.get_by_role("button", name="Add channel").click()
    dialog = page.locator("dialog[open]")
    await dialog.get_by_label("Provider").fill("vidu")
    await dialog.get_by_label("Base URL").fill(f"{server.url}/_sandbox/vidu")
    await dialog.get_by_label("Secrets").fill(f"{good}\n{bad}")
    await dialog.get_by_label("Name", exact=True).fill(name)
    await dialog.get_by_label("Models", exact=True).fill("vidu-ui-only")
    await dialog.get_by_label("Max concurrency per secret").fill("3")
    await dialog.get_by_role("button", name="Add channel").click()
    await expect(dialog).to_have_count(0)
    card = page.locator("article.channel", has=page.locator(".channel-name", has_text=name))
    await expect(card.locator("table.secrets tbody tr")).to_have_count(2)
    await expect(card.locator("table.secrets")).to_contain_text("0 / 3")
    assert good not in await card.inner_text() and bad not in await card.inner_text()  # fingerprints only
    await card.get_by_role("button", name="Test").click()
    result = card.locator(".test-result")
    await expect(result).to_contain_text("Test failed")  # one of the two secrets is refused
    await expect(result.locator("tbody tr").nth(0)).to_contain_text("ok")
    await expect(result.locator("tbody tr").nth(1)).to_contain_text("unauthorized")
    await card.get_by_role("button", name="Disable").click()
    await expect(card.locator(".card-head .badge")).to_contain_text("disabled")
    await card.get_by_role("button", name="Enable").click()
    await expect(card.locator(".card-head .badge")).to_have_text("enabled")
    await card.get_by_role("button", name="Delete").click()
    await card.get_by_role("button", name="Confirm delete").click()
    await expect(card).to_have_count(0)
    listed = (await admin_call(server, "GET", "/channels?limit=500"))["data"]
    assert name not in [c["name"] for c in listed]


async def test_an_api_error_is_shown_in_the_dialog(ui: Recorded, server: Any) -> None:
    await sign_in(ui.page, server.admin_token)
    page = ui.page
    await page.get_by_role("link", name="Channels").click()
    await page.get_by_role("button", name="Add channel").click()
    dialog = page.locator("dialog[open]")
    await dialog.get_by_label("Provider").fill("no-such-provider")
    await dialog.get_by_label("Base URL").fill("http://127.0.0.1:9/x")
    await dialog.get_by_label("Secrets").fill("sk-upstream-secret")
    await dialog.get_by_role("button", name="Add channel").click()
    await expect(dialog.locator(".error")).to_be_visible()
    assert (await dialog.locator(".error").inner_text()).strip()
    await expect(dialog).to_be_visible()  # the form stays open with the API's message


async def test_a_task_appears_and_reaches_its_end_live(ui: Recorded, server: Any) -> None:
    made = await admin_call(server, "POST", "/keys", {"name": f"ui-task-{int(time.time() * 1000)}"})
    task_id = await create_vidu_task(server, made["key"])
    await sign_in(ui.page, server.admin_token)
    page = ui.page
    await page.get_by_role("link", name="Tasks").click()
    link = page.get_by_role("link", name=task_id)
    await expect(link).to_be_visible()
    await link.click()
    detail = page.locator(".task-detail")
    await expect(detail.locator(".task-id")).to_have_text(task_id)
    # no reload: the page polls the admin API until the task is terminal
    await expect(detail).to_have_attribute("data-status", "succeeded", timeout=40_000)
    video = detail.locator(".outputs video").first
    await expect(video).to_be_visible()
    src = await video.get_attribute("src")
    assert src and urlsplit(src).netloc == urlsplit(server.url).netloc, src
    await expect(detail.locator("table")).to_contain_text("succeeded")
    # the list, filtered by this key, shows the task's end state too
    await page.get_by_role("link", name="← All tasks").click()
    await page.locator("input[name=key_id]").fill(str(made["id"]))
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await expect(page.locator("tbody tr")).to_contain_text("succeeded")


async def test_usage_draws_svg_charts_with_tables(ui: Recorded, server: Any) -> None:
    made = await admin_call(server, "POST", "/keys", {"name": f"ui-usage-{int(time.time() * 1000)}"})
    await create_vidu_task(server, made["key"])
    await sign_in(ui.page, server.admin_token)
    page = ui.page
    await page.get_by_role("link", name="Usage").click()
    over_time, breakdown = page.locator(".usage-panel").nth(0), page.locator(".usage-panel").nth(1)
    await expect(over_time.locator("svg.chart rect").first).to_be_visible()
    await expect(over_time.locator("table tbody tr").first).to_be_visible()
    await breakdown.get_by_role("tab", name="per provider").click()
    await expect(breakdown.locator("table")).to_contain_text("vidu")
    await breakdown.get_by_label("Breakdown metric").select_option("tasks")
    await expect(breakdown.locator("svg.chart title").first).to_have_text("tasks per provider")
    assert await breakdown.locator("svg.chart rect").count() >= 1


async def test_every_view_renders_and_only_the_gateway_is_contacted(ui: Recorded, server: Any) -> None:
    made = await admin_call(server, "POST", "/keys", {"name": f"ui-hosts-{int(time.time() * 1000)}"})
    task_id = await create_vidu_task(server, made["key"])
    await sign_in(ui.page, server.admin_token)
    page = ui.page
    await expect(page.locator(".channel-name").first).to_be_visible()
    for view, ready in (("Keys", "table"), ("Tasks", "table"), ("Usage", "svg.chart"), ("Requests", ".filters")):
        await page.get_by_role("link", name=view).click()
        await expect(page.locator(f"#view {ready}").first).to_be_visible()
        await expect(page.locator("#view .error-box")).to_have_count(0)
    await page.goto(f"/admin/#/tasks/{task_id}")
    await expect(page.locator(".task-detail")).to_have_attribute("data-status", "succeeded", timeout=40_000)
    await expect(page.locator(".outputs video").first).to_be_visible()
    await page.get_by_role("link", name="Requests").click()
    await expect(page.locator("#view .filters")).to_be_visible()
    own = urlsplit(server.url).netloc
    network = [u for u in ui.urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert any("/admin/api/" in u for u in network), network
    assert [u for u in network if urlsplit(u).netloc != own] == [], network
