"""The OpenAI-compatible relay end to end: the official `openai` SDK → `gengate serve --sandbox`
(subprocess) → HTTP → the in-process OpenAI emulator. Models, chat (stream, tools, response_format,
include_usage, unknown fields both ways), GPTs, Responses, embeddings, images, bad input."""

from __future__ import annotations

import base64
import io
import json
import struct

import aiohttp
import openai
import pytest
from harness.openai import assert_openai_error, credits_of, sdk, usage_records
from PIL import Image

pytestmark = pytest.mark.timeout(180)

HI = [{"role": "user", "content": "hello relay"}]


@pytest.fixture(scope="module")
def server(make_server):
    return make_server()


async def test_models_list_and_retrieve(server) -> None:
    key = server.make_key()
    c = sdk(server, key)
    ids = [m.id async for m in c.models.list()]
    assert {"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "dall-e-3", "dall-e-2"} <= set(ids)
    # every model a /v1 route answers: GLM chat, the image and video models of the task providers
    assert {"glm-4-flash", "cogview-4", "kling-v1", "gen4_image", "photon-1", "gen4_turbo", "ray-2", "viduq1",
            "cogvideox-3"} <= set(ids), ids
    assert len(ids) == len(set(ids))
    assert (await c.models.retrieve("glm-4-flash")).owned_by == "zhipu"
    assert (await c.models.retrieve("ray-2")).owned_by == "luma"
    assert not any("*" in i for i in ids)
    model = await c.models.retrieve("gpt-4o")
    assert model.id == "gpt-4o" and model.object == "model" and model.owned_by
    assert (await c.models.retrieve("gpt-4-gizmo-g-Ab12Cd34E")).id == "gpt-4-gizmo-g-Ab12Cd34E"
    with pytest.raises(openai.NotFoundError) as nf:
        await c.models.retrieve("gpt-9")
    assert_openai_error(nf.value, 404, "model_not_found")
    limited = sdk(server, server.make_key(models="gpt-4o-mini"))
    assert [m.id async for m in limited.models.list()] == ["gpt-4o-mini"]
    with pytest.raises(openai.NotFoundError):
        await limited.models.retrieve("gpt-4o")
    with pytest.raises(openai.AuthenticationError) as auth:
        await sdk(server, "sk-nope").models.list()
    assert_openai_error(auth.value, 401, "invalid_api_key")


async def test_chat_non_stream_and_stream(server) -> None:
    name, key = server.make_named_key()
    c = sdk(server, key)
    reply = await c.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert reply.object == "chat.completion" and reply.model == "gpt-4o-mini"
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "stop"
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    # Without include_usage: no usage chunk reaches the client (gengate asked for it upstream).
    chunks = [ch async for ch in await c.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True)]
    assert len(chunks) >= 3 and all(ch.choices for ch in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert text == reply.choices[0].message.content
    # With include_usage: the usage chunk, last, with `choices: []`.
    chunks = [ch async for ch in await c.chat.completions.create(
        model="gpt-4o", messages=HI, stream=True, stream_options={"include_usage": True})]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    rows = usage_records(server, name, 3)
    assert [r["stream"] in (1, True) for r in rows] == [False, True, True]
    assert all(r["status"] == 200 and r["credits"] >= 1 and r["input_tokens"] > 0 and r["output_tokens"] > 0
               for r in rows), rows
    assert rows[1]["output_tokens"] == reply.usage.completion_tokens  # the usage chunk, stripped, was billed
    assert rows[0]["route"] == "chat" and rows[0]["model"] == "gpt-4o-mini"


async def test_tools_response_format_and_unknown_fields(server, http: aiohttp.ClientSession) -> None:
    key = server.make_key()
    c = sdk(server, key)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}]
    called = await c.chat.completions.create(model="gpt-4o", messages=HI, tools=tools, tool_choice="auto")
    msg = called.choices[0].message
    assert called.choices[0].finish_reason == "tool_calls" and msg.tool_calls[0].type == "function"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "example", "days": 1}
    pieces = [ch async for ch in await c.chat.completions.create(model="gpt-4o", messages=HI, tools=tools,
                                                                 stream=True)]
    args = "".join(tc.function.arguments or "" for ch in pieces for tc in (ch.choices[0].delta.tool_calls or []))
    assert json.loads(args) == {"city": "example", "days": 1}
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    shaped = await c.chat.completions.create(model="gpt-4o-mini", messages=HI, response_format={
        "type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    assert json.loads(shaped.choices[0].message.content) == {"answer": "example"}
    # Unknown request fields go upstream untouched: a fault rule that matches only that text fires.
    server.upstream.fault(provider="openai", op="create", kind="status", status=418, count=1,
                          body_contains="zz-private-field-value", message="saw the unknown field")
    with pytest.raises(openai.APIStatusError) as seen:
        await c.chat.completions.create(model="gpt-4o-mini", messages=HI,
                                        extra_body={"x_vendor_option": "zz-private-field-value"})
    assert seen.value.status_code == 418 and "saw the unknown field" in seen.value.message
    # Unknown reply fields are kept: the relayed JSON has every key the upstream sent.
    async with http.post(server.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HI},
                         headers={"Authorization": f"Bearer {key}"}) as resp:
        body = await resp.json()
    assert {"service_tier", "system_fingerprint", "usage", "choices"} <= set(body)
    assert "annotations" in body["choices"][0]["message"]


async def test_gpts(server) -> None:
    name, key = server.make_named_key()
    c = sdk(server, key)
    reply = await c.chat.completions.create(model="gpt-4-gizmo-g-Ab12Cd34E", messages=HI)
    assert reply.choices[0].message.content
    chunks = [ch async for ch in await c.chat.completions.create(model="gpt-4o-gizmo-g-Zz99", messages=HI,
                                                                 stream=True)]
    assert chunks and chunks[-1].choices[0].finish_reason == "stop"
    for bare in ("g-Ab12Cd34E", "gizmo-g-Ab12"):
        with pytest.raises(openai.NotFoundError) as nf:
            await c.chat.completions.create(model=bare, messages=HI)
        assert_openai_error(nf.value, 404, "model_not_found")
    rows = usage_records(server, name, 4)
    assert (rows[0]["model"], rows[0]["price_model"]) == ("gpt-4-gizmo-g-Ab12Cd34E", "gpt-4-gizmo-*")
    assert (rows[1]["model"], rows[1]["price_model"]) == ("gpt-4o-gizmo-g-Zz99", "gpt-4o-gizmo-*")
    assert rows[2]["status"] == 404 and rows[2]["credits"] == 0


async def test_responses(server) -> None:
    key = server.make_key()
    c = sdk(server, key)
    resp = await c.responses.create(model="gpt-4o-mini", input="say hello", instructions="be brief")
    assert resp.status == "completed" and resp.output_text and resp.usage.total_tokens > 0
    async with c.responses.stream(model="gpt-4o", input="stream please") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert deltas and "".join(deltas) == final.output_text and final.usage.output_tokens > 0
    with pytest.raises(openai.NotFoundError):
        await c.responses.create(model="gpt-9", input="x")


async def test_embeddings(server) -> None:
    key = server.make_key()
    c = sdk(server, key)
    floats = await c.embeddings.create(model="text-embedding-3-small", input=["one", "two"], encoding_format="float")
    assert [len(d.embedding) for d in floats.data] == [1536, 1536]
    assert floats.data[0].embedding != floats.data[1].embedding and floats.usage.prompt_tokens > 0
    short = await c.embeddings.create(model="text-embedding-3-small", input="one", dimensions=256)  # SDK: base64
    assert len(short.data[0].embedding) == 256
    raw = await c.embeddings.with_raw_response.create(model="text-embedding-3-small", input="one",
                                                      encoding_format="base64", dimensions=16)
    assert len(struct.unpack("<16f", base64.b64decode(raw.http_response.json()["data"][0]["embedding"]))) == 16


async def test_images(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=1_000_000)
    c = sdk(server, key)
    img = await c.images.generate(model="dall-e-3", prompt="a red fox", size="1792x1024")
    url = img.data[0].url
    assert url.startswith(server.url + "/files/") and img.data[0].revised_prompt
    async with http.get(url) as resp:  # a gengate media URL, no Authorization
        assert resp.status == 200
        Image.open(io.BytesIO(await resp.read())).verify()
    b64 = await c.images.generate(model="dall-e-2", prompt="a fox", n=2, size="256x256", response_format="b64_json")
    assert len(b64.data) == 2
    Image.open(io.BytesIO(base64.b64decode(b64.data[0].b64_json))).verify()
    png = io.BytesIO()
    Image.new("RGBA", (64, 64), (0, 128, 255, 255)).save(png, "PNG")
    edited = await c.images.edit(model="dall-e-2", image=("in.png", png.getvalue(), "image/png"),
                                 prompt="add a hat", size="512x512")
    assert edited.data[0].url.startswith(server.url + "/files/")
    with pytest.raises(openai.BadRequestError) as bad:
        await c.images.generate(model="dall-e-3", prompt="x", n=2)
    assert_openai_error(bad.value, 400)
    rows = usage_records(server, name, 4)
    assert [r["credits"] for r in rows] == [80_000, 2 * 16_000, 18_000, 0]
    assert credits_of(server, name) == 1_000_000 - 80_000 - 32_000 - 18_000


async def test_bad_input_is_4xx_and_free(server, http: aiohttp.ClientSession) -> None:
    name, key = server.make_named_key(credits=50_000)
    creates = server.upstream.stats()["openai"]["creates"]
    c = sdk(server, key)
    with pytest.raises(openai.BadRequestError) as e1:
        await c.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert assert_openai_error(e1.value, 400)["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        await c.chat.completions.create(model="gpt-4o-mini", messages="hello")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError) as e3:
        await c.chat.completions.create(model="no-such-model", messages=HI)
    assert_openai_error(e3.value, 404, "model_not_found")
    limited = sdk(server, server.make_key(models="gpt-4o-mini", credits=1000))
    with pytest.raises(openai.NotFoundError):
        await limited.chat.completions.create(model="gpt-4o", messages=HI)
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    raw_cases = [
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "\\ud800"}]}',
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": NaN}]}',
        b'{"model": "gpt-4o-mini", "messages": ' + b"[" * 600 + b"]" * 600 + b"}",
        b'{"model": 5, "messages": []}',
        b"not json",
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}',
    ]
    for raw in raw_cases:
        async with http.post(server.url + "/v1/chat/completions", data=raw, headers=auth) as resp:
            body = await resp.json()
            assert resp.status == 400, (raw[:60], resp.status, body)
            assert body["error"]["type"] == "invalid_request_error"
    big = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * (1024 * 1024 + 10)}]})
    async with http.post(server.url + "/v1/chat/completions", data=big, headers=auth) as resp:
        assert resp.status == 413 and (await resp.json())["error"]["code"] == "request_too_large"
    async with http.post(server.url + "/v1/embeddings", json={"model": "text-embedding-3-small"},
                         headers=auth) as resp:
        assert resp.status == 400
    async with http.get(server.url + "/v1/nothing-here", headers=auth) as resp:
        assert resp.status == 404 and "error" in await resp.json()
    assert credits_of(server, name) == 50_000
    assert server.upstream.stats()["openai"]["creates"] == creates  # nothing reached the upstream
