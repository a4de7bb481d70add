"""With `GENGATE_URL_ALLOW_PRIVATE=1` (local testing only) both formats read a page on loopback, which
the address rule otherwise refuses; the server logs a warning that the rule is off."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def open_server(make_server: Any) -> Any:
    return make_server(sandbox=False, env={"GENGATE_URL_ALLOW_PRIVATE": "1"})


async def test_loopback_page_in_both_formats(http, open_server, private_site):
    key = open_server.make_key()
    auth = {"Authorization": f"Bearer {key}", "Connection": "close"}
    async with http.get(f"{open_server.url}/r/{private_site.base}/article", headers=auth) as resp:
        assert resp.status == 200
        assert "Gateways and readers" in await resp.text()
    async with http.post(open_server.url + "/v1/scrape", json={"url": private_site.base + "/article",
                                                                "formats": ["links"]}, headers=auth) as resp:
        body = await resp.json()
    assert resp.status == 200 and private_site.base + "/docs/intro" in body["data"]["links"]
    assert "GENGATE_URL_ALLOW_PRIVATE is set" in open_server.log_text()
