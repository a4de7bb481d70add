"""GLM `glm-4-flash` on `/v1/chat/completions` with the official `openai` SDK over HTTP: routed to the
sandbox's `zhipu` channel (no openai channel serves it), answered in OpenAI's shape: `object` set, and
when streaming, `usage` on a chunk of its own (`choices: []`) only when `include_usage` is asked."""

from __future__ import annotations

import aiohttp
import openai
import pytest

pytestmark = pytest.mark.timeout(200)


@pytest.fixture(scope="module")
def server(make_server):
    return make_server()


def sdk(server, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=30)


MESSAGES = [{"role": "user", "content": "Say hello to the sea"}]


async def test_non_stream(server) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    reply = await sdk(server, key).chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    raw = reply.model_dump()
    assert raw["object"] == "chat.completion" and raw["model"] == "glm-4-flash", raw
    assert reply.choices[0].message.role == "assistant" and reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert server.credits(name) < 1_000_000


async def test_stream_include_usage(server) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    stream = await sdk(server, key).chat.completions.create(
        model="glm-4-flash", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    *content, last = chunks
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0, last
    assert all(c.usage is None and c.choices for c in content)
    text = "".join(c.choices[0].delta.content or "" for c in content)
    assert text.strip()
    assert content[-1].choices[0].finish_reason == "stop"
    assert server.credits(name) < 1_000_000


async def test_stream_without_usage(server) -> None:
    _, key = server.make_named_key(credits=1_000_000)
    stream = await sdk(server, key).chat.completions.create(model="glm-4-flash", messages=MESSAGES, stream=True)
    chunks = [c async for c in stream]
    assert chunks and all(c.usage is None and c.choices for c in chunks)


async def test_unknown_model_is_openai_404(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk(server, key).chat.completions.create(model="glm-9", messages=MESSAGES)
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert server.credits(name) == 1_000_000
