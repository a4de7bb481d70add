"""`GET /r/{url}` in Jina Reader's format, end to end: a real `gengate serve` fetches pages from a local
server (127.0.0.2, allow-listed) through the SSRF guard; text and JSON replies, the control headers,
PDF targets, the cache, per-call pricing; and every refused SSRF class is a 4xx that reaches nothing
and charges nothing."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from yarl import URL

pytestmark = pytest.mark.timeout(180)


async def read(http: aiohttp.ClientSession, server: Any, key: str | None, target: str,
               **headers: str) -> tuple[int, str, dict[str, str]]:
    # A fresh connection per call: a kept-alive one may be closed by the server while the test runs the CLI.
    sent = {"Connection": "close", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    # encoded=True: sent exactly as written (aiohttp would otherwise normalise `%2F` in the query)
    async with http.get(URL(server.url + "/r/" + target, encoded=True), headers=sent) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def test_text_reply(http, reader_server, site):
    key = reader_server.make_key()
    status, text, headers = await read(http, reader_server, key, site.base + "/article")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    head, _, content = text.partition("Markdown Content:\n")
    assert head == (f"Title: The Example Article\n\nURL Source: {site.base}/article\n\n"
                    "Published Time: 2024-05-01T08:00:00Z\n\n")
    assert "# Gateways and readers" in content
    assert f"[the introduction]({site.base}/docs/intro)" in content  # links kept, made absolute
    assert "[another site](https://other.example/x)" in content
    assert "Footer links" not in content and "BUY NOW" not in content  # main content only


async def test_json_reply_with_links_and_images(http, reader_server, site):
    key = reader_server.make_key()
    status, text, headers = await read(http, reader_server, key, site.base + "/article", Accept="application/json",
                                       X_With_Links_Summary="true", X_With_Images_Summary="true")
    assert status == 200 and headers["Content-Type"] == "application/json"
    body = json.loads(text)
    assert (body["code"], body["status"]) == (200, 20000)
    data = body["data"]
    assert (data["title"], data["url"], data["description"]) == ("The Example Article", site.base + "/article",
                                                                 "An article the tests serve")
    assert "Gateways and readers" in data["content"]
    assert data["links"]["the introduction"] == site.base + "/docs/intro"
    assert data["links"]["Home"] == site.base + "/home"
    assert data["images"] == {"Image 1: A chart": site.base + "/img/chart.png"}
    assert data["usage"]["tokens"] > 20
    plain = json.loads((await read(http, reader_server, key, site.base + "/article", Accept="application/json"))[1])
    assert "links" not in plain["data"] and "images" not in plain["data"]


async def test_summaries_in_text_mode(http, reader_server, site):
    key = reader_server.make_key()
    _, text, _ = await read(http, reader_server, key, site.base + "/article", X_With_Links_Summary="true",
                            X_With_Images_Summary="true")
    assert f"Images:\n- ![Image 1: A chart]({site.base}/img/chart.png)" in text
    assert f"Links/Buttons:\n- [Home]({site.base}/home)" in text


async def test_return_formats_and_selectors(http, reader_server, site):
    key = reader_server.make_key()
    url = site.base + "/article"
    _, html, _ = await read(http, reader_server, key, url, X_Return_Format="html")
    assert "HTML Content:\n" in html and "<p>" in html
    _, text, _ = await read(http, reader_server, key, url, X_Return_Format="text")
    content = text.partition("Text Content:\n")[2]
    assert "Gateways and readers" in content and "<p>" not in content and "](" not in content
    _, picked, _ = await read(http, reader_server, key, url, X_Target_Selector="p.note")
    assert picked.partition("Markdown Content:\n")[2].strip() == "Side note inside the article."
    _, removed, _ = await read(http, reader_server, key, url, X_Target_Selector="body",
                               X_Remove_Selector="article, nav")
    content = removed.partition("Markdown Content:\n")[2]
    assert "Gateways" not in content and "Home" not in content and "Footer links" in content


async def test_raw_query_string_reaches_the_target(http, reader_server, site):
    key = reader_server.make_key()
    _, text, _ = await read(http, reader_server, key, site.base + "/query?a=1&b=%2Fx&c")
    assert "You asked for /query?a=1&b=%2Fx&c" in text
    assert f"URL Source: {site.base}/query?a=1&b=%2Fx&c" in text


async def test_post_with_a_url_body(http, reader_server, site):
    key = reader_server.make_key()
    auth = {"Authorization": f"Bearer {key}", "Connection": "close"}
    async with http.post(reader_server.url + "/r/", json={"url": site.base + "/article"},
                         headers={**auth, "Accept": "application/json"}) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["data"]["url"] == site.base + "/article"
    async with http.post(reader_server.url + "/r/", json={"link": "x"}, headers=auth) as resp:
        assert resp.status == 422 and (await resp.json())["name"] == "ParamValidationError"


async def test_pdf_url_gives_its_text(http, reader_server, site):
    key = reader_server.make_key()
    status, text, _ = await read(http, reader_server, key, site.base + "/doc.pdf")
    assert status == 200
    assert text.startswith("Title: Statement\n")
    assert "Annual statement" in text and "Profits rose sharply" in text


async def test_redirects_are_followed_and_the_final_url_shown(http, reader_server, site):
    key = reader_server.make_key()
    _, text, _ = await read(http, reader_server, key, site.base + "/redirect-ok")
    assert f"URL Source: {site.base}/article" in text


async def test_cache_and_no_cache(http, reader_server, site):
    key = reader_server.make_key()
    url = site.base + "/counter"
    first = (await read(http, reader_server, key, url))[1]
    again = (await read(http, reader_server, key, url))[1]
    assert first == again and "Visit number" in first
    fresh = (await read(http, reader_server, key, url, X_No_Cache="true"))[1]
    assert fresh != first


async def test_timeout_is_a_jina_error(http, reader_server, site):
    key = reader_server.make_key()
    status, text, _ = await read(http, reader_server, key, site.base + "/slow", X_Timeout="1")
    body = json.loads(text)
    assert status == 422 and (body["code"], body["name"]) == (422, "TimeoutError")


async def test_price_per_call_and_nothing_for_failures(http, reader_server, site, private_site):
    name, key = reader_server.make_named_key(credits=1500)
    assert (await read(http, reader_server, key, site.base + "/article"))[0] == 200
    assert reader_server.credits(name) == 800
    assert (await read(http, reader_server, key, private_site.base + "/secret"))[0] == 400
    assert (await read(http, reader_server, key, site.base + "/slow", X_Timeout="1"))[0] == 422
    assert reader_server.credits(name) == 800
    assert (await read(http, reader_server, key, site.base + "/article"))[0] == 200  # cached: still a call
    assert reader_server.credits(name) == 100
    hits = len(site.hits)
    status, text, _ = await read(http, reader_server, key, site.base + "/plain.txt")
    assert status == 402 and json.loads(text)["name"] == "InsufficientBalanceError"
    assert len(site.hits) == hits and reader_server.credits(name) == 100


REFUSED = {
    "loopback": "http://127.0.0.1:{port}/secret",
    "loopback-short": "http://127.1:{port}/secret",
    "loopback-decimal": "http://2130706433:{port}/secret",
    "loopback-hex": "http://0x7f.1:{port}/secret",
    "ipv6-loopback": "http://[::1]:{port}/secret",
    "ipv4-mapped": "http://[::ffff:127.0.0.1]:{port}/secret",
    "unspecified": "http://0.0.0.0:{port}/secret",
    "private-10": "http://10.0.0.1/",
    "private-172": "http://172.16.0.1/",
    "private-192": "http://192.168.1.1/",
    "cgnat": "http://100.64.0.1/",
    "link-local": "http://169.254.10.10/",
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "alibaba-metadata": "http://100.100.100.200/",
    "ipv6-link-local": "http://[fe80::1]/",
    "ipv6-unique-local": "http://[fd00::1]/",
    "multicast": "http://224.0.0.1/",
    "reserved": "http://240.0.0.1/",
    "benchmark": "http://198.18.0.1/",
    "localhost-name": "http://localhost:{port}/secret",
    "metadata-name": "http://metadata.google.internal/",
    "name-resolving-private": "http://runsc:{port}/secret",
    "scheme": "ftp://127.0.0.2/x",
}


@pytest.fixture(scope="module")
def ssrf_key(reader_server: Any) -> tuple[str, str]:
    return reader_server.make_named_key(credits=10_000)


@pytest.mark.parametrize("target", list(REFUSED.values()), ids=list(REFUSED))
async def test_refused_ssrf_classes(http, reader_server, private_site, ssrf_key, target):
    key = ssrf_key[1]
    before = len(private_site.hits)
    status, text, _ = await read(http, reader_server, key, target.format(port=private_site.port))
    body = json.loads(text)
    assert 400 <= status < 500 and body["code"] == status, body
    assert body["name"] in ("SecurityCompromiseError", "ParamValidationError")
    assert len(private_site.hits) == before


def test_refusals_charged_nothing(reader_server, ssrf_key):
    assert reader_server.credits(ssrf_key[0]) == 10_000


async def test_redirect_to_loopback_is_refused(http, reader_server, site, private_site):
    key = reader_server.make_key()
    before = len(private_site.hits)
    status, text, _ = await read(http, reader_server, key, site.base + "/redirect-private")
    assert status == 400 and json.loads(text)["name"] == "SecurityCompromiseError"
    assert len(private_site.hits) == before


async def test_bad_requests_in_jina_envelope(http, reader_server, site):
    key = reader_server.make_key()
    status, text, _ = await read(http, reader_server, None, site.base + "/article")
    assert status == 401 and json.loads(text)["name"] == "AuthenticationFailedError"
    for headers in ({"X_Return_Format": "screenshot"}, {"X_Timeout": "soon"}, {"X_Proxy_Url": "http://p:1"},
                    {"X_Target_Selector": "p[[["}):
        status, text, _ = await read(http, reader_server, key, site.base + "/article", **headers)
        body = json.loads(text)
        assert status == 422 and body["name"] == "ParamValidationError" and body["status"] == 42206, headers
    status, text, _ = await read(http, reader_server, key, "")
    assert status == 422
    async with http.post(reader_server.url + "/r/" + site.base, headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 405 and (await resp.json())["name"] == "MethodNotAllowedError"
    assert "Traceback" not in reader_server.log_text()
