"""`POST /v1/scrape` in Firecrawl v1's format, end to end on pages a local server serves: formats,
onlyMainContent, includeTags/excludeTags, headers, timeout, PDFs, the strict schema (an unknown key is a
400 with `details`), SSRF refusals and per-call pricing, each error in Firecrawl's envelope."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from .pages import ARTICLE

pytestmark = pytest.mark.timeout(180)


async def scrape(http: aiohttp.ClientSession, server: Any, key: str | None, body: Any = None,
                 data: bytes | None = None) -> tuple[int, Any]:
    # A fresh connection per call: a kept-alive one may be closed by the server while the test runs the CLI.
    headers = {"Authorization": f"Bearer {key}", "Connection": "close"} if key else {"Connection": "close"}
    kwargs: dict[str, Any] = {"data": data, "headers": {**headers, "Content-Type": "application/json"}} \
        if data is not None else {"json": body, "headers": headers}
    async with http.post(server.url + "/v1/scrape", **kwargs) as resp:
        return resp.status, await resp.json()


async def test_default_is_markdown_with_metadata(http, reader_server, site):
    status, body = await scrape(http, reader_server, reader_server.make_key(), {"url": site.base + "/article"})
    assert status == 200 and body["success"] is True
    data = body["data"]
    assert set(data) == {"markdown", "metadata"}
    assert "# Gateways and readers" in data["markdown"]
    assert f"[the introduction]({site.base}/docs/intro)" in data["markdown"]
    assert "Footer links" not in data["markdown"]
    meta = data["metadata"]
    assert (meta["title"], meta["description"], meta["language"]) == ("The Example Article",
                                                                      "An article the tests serve", "en")
    assert (meta["sourceURL"], meta["url"], meta["statusCode"]) == (site.base + "/article", site.base + "/article", 200)
    assert (meta["ogTitle"], meta["ogSiteName"]) == ("OG Example", "Test Site")
    assert meta["publishedTime"] == "2024-05-01T08:00:00Z" and meta["keywords"] == "tests,reader"


async def test_every_format(http, reader_server, site):
    key = reader_server.make_key()
    status, body = await scrape(http, reader_server, key, {"url": site.base + "/redirect-ok",
                                                           "formats": ["markdown", "html", "rawHtml", "links"]})
    assert status == 200
    data = body["data"]
    assert "<p>" in data["html"] and "Gateways and readers" in data["html"]
    assert data["rawHtml"] == ARTICLE.decode()
    assert site.base + "/docs/intro" in data["links"] and "https://other.example/x" in data["links"]
    assert all(link.startswith(("http://", "https://")) for link in data["links"])
    assert data["metadata"]["url"] == site.base + "/article"
    assert data["metadata"]["sourceURL"] == site.base + "/redirect-ok"


async def test_main_content_and_tags(http, reader_server, site):
    key = reader_server.make_key()
    url = site.base + "/article"
    full = (await scrape(http, reader_server, key, {"url": url, "onlyMainContent": False}))[1]["data"]["markdown"]
    assert "Footer links" in full and "Home" in full and "Gateways and readers" in full
    only = (await scrape(http, reader_server, key, {"url": url, "includeTags": ["p.note"]}))[1]["data"]["markdown"]
    assert only.strip() == "Side note inside the article."
    rest = (await scrape(http, reader_server, key, {"url": url, "onlyMainContent": False,
                                                    "excludeTags": ["article", "nav"]}))[1]["data"]["markdown"]
    assert "Gateways" not in rest and "Home" not in rest and "Footer links" in rest


async def test_headers_reach_the_target_but_not_host(http, reader_server, site):
    key = reader_server.make_key()
    _, body = await scrape(http, reader_server, key, {"url": site.base + "/echo-headers", "formats": ["markdown"],
                                                      "headers": {"X-Test": "yes", "Host": "evil.example"}})
    text = body["data"]["markdown"]
    assert "X-Test: yes" in text
    assert f"Host: 127.0.0.2:{site.port}" in text and "evil.example" not in text


async def test_pdf_and_error_pages(http, reader_server, site):
    key = reader_server.make_key()
    _, body = await scrape(http, reader_server, key, {"url": site.base + "/doc.pdf"})
    assert "Annual statement" in body["data"]["markdown"] and body["data"]["metadata"]["title"] == "Statement"
    status, body = await scrape(http, reader_server, key, {"url": site.base + "/missing"})
    assert status == 200 and body["success"] is True and body["data"]["metadata"]["statusCode"] == 404


async def test_timeout_is_408(http, reader_server, site):
    status, body = await scrape(http, reader_server, reader_server.make_key(),
                                {"url": site.base + "/slow", "timeout": 1000})
    assert status == 408 and body["success"] is False and body["error"]


@pytest.mark.parametrize("body,problem", [
    ({"url": "https://a.example", "foo": 1}, {"code": "unrecognized_keys", "keys": ["foo"]}),
    ({}, {"code": "invalid_type", "path": ["url"], "message": "Required"}),
    ({"url": 5}, {"code": "invalid_type", "path": ["url"], "expected": "string"}),
    ({"url": "https://a.example", "formats": ["pdf"]}, {"code": "invalid_enum_value", "path": ["formats", 0]}),
    ({"url": "https://a.example", "formats": ["screenshot"]}, {"code": "custom", "path": ["formats", 0]}),
    ({"url": "https://a.example", "actions": [{"type": "wait", "milliseconds": 5}]}, {"path": ["actions"]}),
    ({"url": "https://a.example", "onlyMainContent": "yes"}, {"path": ["onlyMainContent"], "expected": "boolean"}),
    ({"url": "https://a.example", "timeout": -5}, {"path": ["timeout"]}),
    ({"url": "https://a.example", "includeTags": "p"}, {"path": ["includeTags"], "expected": "array"}),
    ([1, 2], {"code": "invalid_type", "expected": "object"}),
], ids=["unknown-key", "no-url", "url-type", "format", "browser-format", "actions", "bool", "timeout", "tags",
        "not-object"])
async def test_schema_errors_are_400_with_details(http, reader_server, body, problem):
    key = reader_server.make_key(credits=5000)
    status, reply = await scrape(http, reader_server, key, body)
    assert status == 400 and reply["success"] is False and reply["error"] == "Bad Request"
    assert any(all(d.get(k) == v for k, v in problem.items()) for d in reply["details"]), reply


async def test_other_bad_requests(http, reader_server, site, private_site):
    name, key = reader_server.make_named_key(credits=5000)
    for raw in (b"{not json", b'{"url": "\\ud800"}', b'{"url": NaN}'):
        status, reply = await scrape(http, reader_server, key, data=raw)
        assert status == 400 and reply["success"] is False and "details" not in reply
    status, reply = await scrape(http, reader_server, key, data=b'{"url": "' + b"a" * (2 * 1024 * 1024) + b'"}')
    assert status == 413 and reply["success"] is False
    status, reply = await scrape(http, reader_server, None, {"url": site.base + "/article"})
    assert status == 401 and reply["success"] is False
    before = len(private_site.hits)
    for target in (private_site.base + "/secret", site.base + "/redirect-private", "http://169.254.169.254/",
                   "http://[::1]:1/", "file:///etc/passwd"):
        status, reply = await scrape(http, reader_server, key, {"url": target})
        assert status == 400 and reply["success"] is False, (target, reply)
    assert len(private_site.hits) == before
    async with http.get(reader_server.url + "/v1/scrape", headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 405 and (await resp.json())["success"] is False
    assert reader_server.credits(name) == 5000
    assert "Traceback" not in reader_server.log_text()


async def test_priced_per_call(http, reader_server, site):
    name, key = reader_server.make_named_key(credits=2000)
    assert (await scrape(http, reader_server, key, {"url": site.base + "/plain.txt"}))[0] == 200
    assert reader_server.credits(name) == 1100
    assert (await scrape(http, reader_server, key, {"url": site.base + "/plain.txt"}))[0] == 200
    assert reader_server.credits(name) == 200
    status, reply = await scrape(http, reader_server, key, {"url": site.base + "/plain.txt"})
    assert status == 402 and reply["success"] is False
    assert reader_server.credits(name) == 200
