"""GLM chat under `/api/paas/v4` end to end: the official `zhipuai` SDK (in its own venv, as a real
client over HTTP) → `gengate serve --sandbox` (subprocess) → the GLM emulator. GLM's shape (no
`object`, usage on the last stream chunk, extra `tools` types passed through), GLM's error body and
codes, nothing charged for bad input, 1113 when out of credit, upstream auth raw and JWT."""

from __future__ import annotations

import time

import aiohttp
import jwt
import openai
import pytest
from harness.openai import channel_rows, usage_records
from harness.zhipu import add_zhipu_channel, run_sdk

pytestmark = pytest.mark.timeout(300)

HI = [{"role": "user", "content": "hello glm"}]


@pytest.fixture(scope="module")
def server(make_server):
    return make_server()


def test_sdk_chat_non_stream_and_stream(server) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    out = run_sdk(server, key, """
        r = client.chat.completions.create(model="glm-4-flash", messages=[{"role": "user", "content": "hello glm"}],
                                           temperature=0.0, top_p=1.0)
        out["reply"] = r.model_dump()
        chunks = client.chat.completions.create(model="glm-4-flash", stream=True,
                                                messages=[{"role": "user", "content": "hello glm"}])
        out["chunks"] = [c.model_dump() for c in chunks]
    """)
    reply = out["reply"]
    assert reply["model"] == "glm-4-flash" and reply["id"] and reply["request_id"] == reply["id"]
    assert reply["choices"][0]["message"]["content"].startswith("Hello!")
    assert reply["choices"][0]["finish_reason"] == "stop" and reply["usage"]["total_tokens"] > 0
    chunks = out["chunks"]
    assert len(chunks) >= 3
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["usage"]["completion_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == reply["choices"][0]["message"]["content"]
    rows = usage_records(server, name, 2)
    assert [bool(r["stream"]) for r in rows] == [False, True]
    assert all(r["status"] == 200 and r["credits"] >= 1 and r["output_tokens"] > 0 for r in rows), rows
    assert rows[1]["output_tokens"] == last["usage"]["completion_tokens"]  # the last chunk's usage was billed
    assert server.credits(name) == 1_000_000 - sum(r["credits"] for r in rows)


async def test_raw_shape_and_tools_pass_through(server, http: aiohttp.ClientSession) -> None:
    key = server.make_key()
    url = server.url + "/api/paas/v4/chat/completions"
    tools = [{"type": "web_search", "web_search": {"enable": True, "search_engine": "search_std"}}]
    async with http.post(url, json={"model": "glm-4-flash", "messages": HI, "tools": tools, "glm_extra": 1},
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert "object" not in body and body["web_search"][0]["link"]
    async with http.post(url, json={"model": "glm-4-flash", "messages": HI, "stream": True, "tools": tools},
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        text = (await resp.read()).decode()
    events = [e for e in text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]" and '"usage"' in events[-2] and '"finish_reason":"stop"' in events[-2]
    assert '"object"' not in text and '"web_search"' in events[-2]
    # A function tool: OpenAI's tool_calls shape.
    fn = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    async with http.post(url, json={"model": "glm-4-flash", "messages": HI, "tools": fn},
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        body = await resp.json()
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


async def test_openai_sdk_streams_glm(server) -> None:
    client = openai.AsyncOpenAI(base_url=server.url + "/api/paas/v4", api_key=server.make_key(), max_retries=0)
    chunks = [c async for c in await client.chat.completions.create(model="glm-4-flash", messages=HI, stream=True)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks).startswith("Hello!")
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


async def test_bad_input_is_glm_4xx_and_free(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=500_000)
    url = server.url + "/api/paas/v4/chat/completions"
    cases = [
        ({"model": "glm-4-flash"}, 400, "1213"),
        ({"messages": HI}, 400, "1213"),
        ({"model": "glm-4-flash", "messages": "hi"}, 400, "1214"),
        ({"model": "glm-4-flash", "messages": []}, 400, "1214"),
        ({"model": "glm-4-flash", "messages": HI, "stream": "yes"}, 400, "1214"),
        ({"model": "glm-4-flash", "messages": HI, "temperature": "hot"}, 400, "1214"),
        ({"model": "glm-9", "messages": HI}, 400, "1211"),
        ({"model": "glm-4-flash", "messages": [{"role": "user", "content": "x " * 700_000}]}, 400, "1261"),
    ]
    for body, status, code in cases:
        async with http.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
            got = await resp.json()
            assert resp.status == status, (body, got)
        assert got == {"error": {"code": code, "message": got["error"]["message"]}} and got["error"]["message"]
    async with http.post(url, data=b"{nope", headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "1210"
    async with http.post(url, json={"model": "glm-4-flash", "messages": HI},
                         headers={"Authorization": "Bearer sk-wrong"}) as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "1000"
    async with http.get(server.url + "/api/paas/v4/nowhere", headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "1222"
    out = run_sdk(server, key, """
        try:
            client.chat.completions.create(model="glm-9", messages=[{"role": "user", "content": "x"}])
        except zhipuai.APIStatusError as exc:
            out["err"] = error_of(exc)
    """)
    assert out["err"]["class"] == "APIRequestFailedError" and out["err"]["status"] == 400
    assert out["err"]["body"]["error"]["code"] == "1211"
    assert server.credits(name) == 500_000  # nothing charged


def test_out_of_credit_is_429_1113(server) -> None:
    name, key = server.make_named_key(credits=0)
    out = run_sdk(server, key, """
        try:
            client.chat.completions.create(model="glm-4-flash", messages=[{"role": "user", "content": "x"}])
        except zhipuai.APIStatusError as exc:
            out["err"] = error_of(exc)
    """)
    assert out["err"]["class"] == "APIReachLimitError" and out["err"]["status"] == 429
    assert out["err"]["body"]["error"]["code"] == "1113"
    assert server.credits(name) == 0


async def test_upstream_auth_raw_and_jwt(make_server, emulator, http: aiohttp.ClientSession) -> None:
    server = make_server(sandbox=False, start=False, env={"GENGATE_POLL_INTERVAL": "0.2"})
    raw = add_zhipu_channel(server, emulator, "glm-raw", auth="raw", models="glm-4-flash")
    jwt_secret = add_zhipu_channel(server, emulator, "glm-jwt", auth="jwt", models="glm-4-plus,cogvideox-3")
    server.start()
    key = server.make_key()
    url = server.url + "/api/paas/v4/chat/completions"
    for model in ("glm-4-flash", "glm-4-plus", "glm-4-plus"):
        async with http.post(url, json={"model": model, "messages": HI},
                             headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status == 200, await resp.text()
    assert emulator.creates(raw, "zhipu") == 1 and emulator.creates(jwt_secret, "zhipu") == 2
    # The task engine signs its JWTs too (submit and every poll).
    async with http.post(server.url + "/api/paas/v4/videos/generations", json={"model": "cogvideox-3", "prompt": "x"},
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        task = await resp.json()
        assert resp.status == 200, task
    end = time.monotonic() + 60
    while task["task_status"] == "PROCESSING" and time.monotonic() < end:
        async with http.get(server.url + f"/api/paas/v4/async-result/{task['id']}",
                            headers={"Authorization": f"Bearer {key}"}) as resp:
            task = await resp.json()
    assert task["task_status"] == "SUCCESS" and emulator.creates(jwt_secret, "zhipu") == 3, task
    # The emulator checks what it is sent: a JWT with a wrong signature or past its `exp` (ms) is a 401.
    base = emulator.provider_url("zhipu") + "/api/paas/v4/chat/completions"
    now = int(time.time() * 1000)
    head = {"alg": "HS256", "sign_type": "SIGN"}
    good = jwt.encode({"api_key": raw, "exp": now + 210_000, "timestamp": now}, raw, headers=head)
    forged = jwt.encode({"api_key": raw, "exp": now + 210_000, "timestamp": now}, "other", headers=head)
    old = jwt.encode({"api_key": raw, "exp": now - 1000, "timestamp": now - 211_000}, raw, headers=head)
    for token, status in ((good, 200), (forged, 401), (old, 401), (f"{raw}.x", 401), (f"{raw}.{raw}", 200)):
        async with http.post(base, json={"model": "glm-4-flash", "messages": HI},
                             headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.json()
            assert resp.status == status, (token, body)
            if status == 401:
                assert body["error"]["code"] == "1000"


async def test_upstream_refusals(make_server, emulator, http: aiohttp.ClientSession) -> None:
    """An upstream's 400 (GLM's own body) is relayed; a 1113 upstream disables that secret and fails over."""
    server = make_server(sandbox=False, start=False)
    a = add_zhipu_channel(server, emulator, "glm-a", models="glm-4.5", extra=("--priority", "0"))
    b = add_zhipu_channel(server, emulator, "glm-b", models="glm-4.5", extra=("--priority", "1"))
    server.start()
    key = server.make_key()
    url = server.url + "/api/paas/v4/chat/completions"
    emulator.fault(provider="zhipu", op="create", secret=a, count=1, kind="status", status=429,
                   message="Insufficient balance or no resource package. Please recharge.")
    async with http.post(url, json={"model": "glm-4.5", "messages": HI},
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        assert resp.status == 200, await resp.text()
    assert emulator.creates(b, "zhipu") == 1
    assert "insufficient balance" in str(channel_rows(server)["glm-a"]).lower()  # disabled with the reason
