"""CogView `images.generations` with the `zhipuai` SDK: synchronous, the image re-hosted behind a
gengate media URL (real PNG bytes), priced per image; bad input is GLM's 4xx and free."""

from __future__ import annotations

import aiohttp
import pytest
from harness.zhipu import run_sdk

pytestmark = pytest.mark.timeout(200)

PRICE = 8_500


@pytest.fixture(scope="module")
def server(make_server):
    return make_server()


async def test_sdk_cogview(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=100_000)
    out = run_sdk(server, key, """
        r = client.images.generations(model="cogview-4", prompt="a red fox", size="1024x1024", quality="hd")
        out["reply"] = r.model_dump()
        try:
            client.images.generations(model="cogview-9", prompt="a red fox")
        except zhipuai.APIStatusError as exc:
            out["err"] = error_of(exc)
    """)
    url = out["reply"]["data"][0]["url"]
    assert url.startswith(server.url) and out["reply"]["created"] > 0
    async with http.get(url) as resp:
        assert resp.status == 200 and (await resp.read())[:8] == b"\x89PNG\r\n\x1a\n"
    assert out["err"]["status"] == 400 and out["err"]["body"]["error"]["code"] == "1211"
    assert server.credits(name) == 100_000 - PRICE


async def test_bad_image_input_is_free(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=100_000)
    url = server.url + "/api/paas/v4/images/generations"
    for body, code in (({"model": "cogview-4"}, "1213"), ({"prompt": "x"}, "1213"),
                       ({"model": "cogview-4", "prompt": 3}, "1214"),
                       ({"model": "cogview-4", "prompt": "x", "size": "big"}, "1214")):
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
            got = await resp.json()
            assert resp.status == 400 and got["error"]["code"] == code, (body, got)
    assert server.credits(name) == 100_000
