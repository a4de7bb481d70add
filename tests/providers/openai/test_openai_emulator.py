"""The OpenAI emulator on its own (standalone `gengate emulate`), with the official SDK: every call
of openai.md §9, its auth and error envelope, the fault rules on op `create`, and its stats."""

from __future__ import annotations

import base64
import io
import struct

import openai
import pytest
from harness.openai import direct
from PIL import Image

pytestmark = pytest.mark.timeout(120)


async def test_chat_stream_tools_and_usage(emulator) -> None:
    secret = emulator.new_secret()
    c = direct(emulator, secret)
    reply = await c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi you"}])
    assert reply.object == "chat.completion" and reply.choices[0].finish_reason == "stop"
    assert reply.choices[0].message.content and reply.usage.total_tokens > 0
    chunks = [ch async for ch in await c.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})]
    assert len(chunks) >= 4 and len({ch.id for ch in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert all(ch.usage is None for ch in chunks[:-1])
    plain = [ch async for ch in await c.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True)]
    assert all(ch.choices for ch in plain), "no usage chunk unless asked for"
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    called = await c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "w?"}],
                                             tools=tools)
    call = called.choices[0].message.tool_calls[0]
    assert called.choices[0].finish_reason == "tool_calls" and call.function.name == "weather"
    assert "city" in call.function.arguments
    assert emulator.creates(secret, "openai") == 4


async def test_embeddings_images_responses(emulator) -> None:
    c = direct(emulator, emulator.new_secret())
    floats = await c.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
    assert len(floats.data) == 2 and len(floats.data[0].embedding) == 1536
    assert floats.data[0].embedding != floats.data[1].embedding
    raw = await c.embeddings.with_raw_response.create(model="text-embedding-3-small", input="a", dimensions=64,
                                                      encoding_format="base64")
    packed = base64.b64decode(raw.http_response.json()["data"][0]["embedding"])
    assert len(struct.unpack("<64f", packed)) == 64
    img = await c.images.generate(model="dall-e-2", prompt="a fox", size="256x256", response_format="b64_json")
    Image.open(io.BytesIO(base64.b64decode(img.data[0].b64_json))).verify()
    resp = await c.responses.create(model="gpt-4o-mini", input="hello there")
    assert resp.status == "completed" and resp.output_text and resp.usage.total_tokens > 0
    async with c.responses.stream(model="gpt-4o", input="stream me") as stream:
        final = await stream.get_final_response()
    assert final.output_text and final.usage.output_tokens > 0


async def test_auth_errors_and_faults(emulator) -> None:
    secret = emulator.new_secret()
    c = direct(emulator, secret)
    with pytest.raises(openai.AuthenticationError):
        await direct(emulator, "wrong").chat.completions.create(model="gpt-4o", messages=[{"role": "user",
                                                                                             "content": "x"}])
    with pytest.raises(openai.NotFoundError) as nf:
        await c.chat.completions.create(model="gpt-9", messages=[{"role": "user", "content": "x"}])
    assert nf.value.code == "model_not_found"
    emulator.fault(provider="openai", op="create", secret=secret, kind="status", status=429, retry_after=3, count=1)
    with pytest.raises(openai.RateLimitError) as rl:
        await c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert rl.value.response.headers["retry-after"] == "3"
    emulator.fault(provider="openai", op="create", secret=secret, kind="drop_after_accept", after_chunks=2, count=1)
    got = []
    with pytest.raises(openai.APIError):
        async for ch in await c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}],
                                                        stream=True):
            got.append(ch)
    assert len(got) == 2
    assert emulator.creates(secret, "openai") == 1  # the cut stream; refused calls are not jobs
