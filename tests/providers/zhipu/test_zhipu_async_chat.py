"""GLM's asynchronous chat through the task engine: the `zhipuai` SDK's `chat.asyncCompletions.create` +
`retrieve_completion_result` → gengate (saved before the reply, reserved, polled upstream, settled from
the upstream's `usage` at token prices) → the GLM emulator; a failed task is refunded; bad input is
GLM's 4xx and free; an unknown id, or another key's, is GLM's 404."""

from __future__ import annotations

import asyncio
import math
import time

import aiohttp
import pytest
from harness.zhipu import run_sdk

pytestmark = pytest.mark.timeout(300)

ENV = {"GENGATE_POLL_INTERVAL": "0.2", "GENGATE_SANDBOX_TASK_SECONDS": "2"}
START = 1_000_000
FLASH_PER_MILLION = 100_000  # glm-4-flash, input and output (gengate/providers/zhipu/adaptor.py)

POLL = """
import time
task = client.chat.asyncCompletions.create(model="glm-4-flash", temperature=0.0,
                                           messages=[{"role": "user", "content": "hello async glm"}])
out["submit"] = task.model_dump()
end = time.time() + 60
while True:
    res = client.chat.asyncCompletions.retrieve_completion_result(id=task.id)
    if res.task_status != "PROCESSING" or time.time() > end:
        break
    time.sleep(0.3)
out["result"] = res.model_dump()
out["result_class"] = type(res).__name__
"""


@pytest.fixture(scope="module")
def server(make_server):
    return make_server(env=ENV)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_sdk_async_chat_is_settled_from_usage(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=START)
    out = run_sdk(server, key, POLL)
    submit, result = out["submit"], out["result"]
    assert submit["task_status"] == "PROCESSING" and submit["model"] == "glm-4-flash" and submit["id"], submit
    rows = server.db_query(f"SELECT action, reserved FROM tasks WHERE public_id = '{submit['id']}'")
    assert len(rows) == 1 and rows[0]["action"] == "chat" and rows[0]["reserved"] > 0
    assert result["task_status"] == "SUCCESS" and out["result_class"] == "AsyncCompletion", out
    assert result["id"] == submit["id"] and result["model"] == "glm-4-flash"
    message = result["choices"][0]["message"]
    assert message["role"] == "assistant" and message["content"].startswith("Hello! You said:"), message
    assert "async glm" in message["content"] and result["choices"][0]["finish_reason"] == "stop"
    usage = result["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cost = math.ceil((usage["prompt_tokens"] + usage["completion_tokens"]) * FLASH_PER_MILLION / 1_000_000)
    assert server.credits(name) == START - cost
    async with http.get(f"{server.url}/v1/tasks/{submit['id']}", headers=_auth(key)) as resp:
        unified = await resp.json()
        assert resp.status == 200, unified
    assert unified["provider"] == "zhipu" and unified["status"] == "succeeded" and unified["outputs"] == []
    assert unified["cost"] == {"reserved": rows[0]["reserved"], "settled": cost}, unified
    # Another key does not see it: GLM's not-found error.
    other = server.make_key(credits=START)
    async with http.get(f"{server.url}/api/paas/v4/async-result/{submit['id']}", headers=_auth(other)) as resp:
        body = await resp.json()
        assert resp.status == 404 and body["error"]["code"] == "1222", body


def test_failed_async_chat_is_refunded(server) -> None:
    server.upstream.fault(provider="zhipu", op="create", kind="fail_task", count=1)
    name, key = server.make_named_key(credits=START)
    out = run_sdk(server, key, POLL)
    result = out["result"]
    assert result["task_status"] == "FAIL" and out["result_class"] == "AsyncTaskStatus", out
    rows = server.db_query(f"SELECT state, settled FROM tasks WHERE public_id = '{out['submit']['id']}'")
    assert rows == [{"state": "failed", "settled": 0}], rows
    deadline = time.monotonic() + 10
    while server.credits(name) != START and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.credits(name) == START


async def test_bad_async_chat_is_glm_4xx_and_free(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=START)
    url = server.url + "/api/paas/v4/async/chat/completions"
    hi = [{"role": "user", "content": "hi"}]
    for body, code in (({"messages": hi}, "1213"), ({"model": "glm-4-flash"}, "1213"),
                       ({"model": "glm-4-flash", "messages": []}, "1214"),
                       ({"model": "glm-4-flash", "messages": hi, "temperature": 3}, "1214"),
                       ({"model": "glm-4-flash", "messages": hi, "stream": True}, "1214"),
                       ({"model": "glm-9", "messages": hi}, "1211")):
        async with http.post(url, json=body, headers=_auth(key)) as resp:
            got = await resp.json()
            assert resp.status == 400 and got["error"]["code"] == code, (body, got)
    async with http.post(url, data=b"{not json", headers={**_auth(key), "Content-Type": "application/json"}) as resp:
        got = await resp.json()
        assert resp.status == 400 and got["error"]["code"] == "1210", got
    out = run_sdk(server, key, """
        try:
            client.chat.asyncCompletions.create(model="glm-4-flash", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=0)
        except Exception as exc:
            out["error"] = error_of(exc)
    """)
    assert out["error"]["status"] == 400 and out["error"]["body"]["error"]["code"] == "1214", out
    assert server.credits(name) == START
    key_id = server.db_query(f"SELECT id FROM keys WHERE name = '{name}'")[0]["id"]
    assert server.db_query(f"SELECT count(*) AS n FROM tasks WHERE key_id = {key_id}")[0]["n"] == 0


def test_unknown_id_is_glm_404(server) -> None:
    out = run_sdk(server, server.make_key(credits=START), """
        try:
            client.chat.asyncCompletions.retrieve_completion_result(id="1234567890123456789")
        except Exception as exc:
            out["error"] = error_of(exc)
    """)
    error = out["error"]
    assert error["status"] == 404 and error["body"]["error"]["code"] == "1222", out


async def test_raw_async_chat_echoes_request_id_and_passes_tools(server, http: aiohttp.ClientSession) -> None:
    key = server.make_key(credits=START)
    tools = [{"type": "web_search", "web_search": {"enable": True, "search_engine": "search_std"}}]
    body = {"model": "glm-4-flash", "messages": [{"role": "user", "content": "search it"}], "tools": tools,
            "request_id": "my-req-1", "max_tokens": 3}
    async with http.post(server.url + "/api/paas/v4/async/chat/completions", json=body, headers=_auth(key)) as resp:
        submit = await resp.json()
        assert resp.status == 200, submit
    assert submit["request_id"] == "my-req-1" and submit["task_status"] == "PROCESSING" and "choices" not in submit
    url = f"{server.url}/api/paas/v4/async-result/{submit['id']}"
    end = time.monotonic() + 60
    while True:
        async with http.get(url, headers=_auth(key)) as resp:
            result = await resp.json()
            assert resp.status == 200, result
        if result["task_status"] != "PROCESSING" or time.monotonic() > end:
            break
        await asyncio.sleep(0.3)
    assert result["task_status"] == "SUCCESS" and result["request_id"] == "my-req-1", result
    assert result["web_search"][0]["link"]  # the web_search tool reached the upstream
    choice = result["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["message"]["content"].split(" ")) == 3, choice
    assert "video_result" not in result


async def test_async_chat_without_credit_is_1113(server) -> None:
    _, poor = server.make_named_key(credits=0)
    body = {"model": "glm-4-flash", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as fresh, fresh.post(  # the CLI took a while: no idle keep-alive
            server.url + "/api/paas/v4/async/chat/completions", json=body, headers=_auth(poor)) as resp:
        got = await resp.json()
        assert resp.status == 429 and got["error"]["code"] == "1113", got
