"""Channels of the relay (interface.md "Synchronous calls"): priority tiers, weights, `--model-map`,
failover before the first byte (500, 429 + Retry-After, timeout, refused connection, a stream cut
before its first byte), cooldown, auto-disable on 401 with the reason, every channel failing → 502
with nothing charged, `--option responses=false`.

client (official SDK) → `gengate serve` (no sandbox) → HTTP → a standalone `gengate emulate`;
each test adds its own channels, serving a client model name of its own mapped to a real one."""

from __future__ import annotations

import asyncio
import base64
import io
import secrets
import time

import openai
import pytest
from harness.openai import add_openai_channel, assert_openai_error, channel_rows, credits_of, sdk, usage_records
from harness.processes import free_port
from harness.services import fresh_pg_database
from PIL import Image

pytestmark = pytest.mark.timeout(180)

HI = [{"role": "user", "content": "route me"}]
ENV = {"GENGATE_REQUEST_TIMEOUT": "1.5", "GENGATE_BACKOFF_BASE": "20", "GENGATE_BACKOFF_MAX": "60"}


@pytest.fixture(scope="module")
def server(make_server, emulator):
    yield make_server(sandbox=False, env=ENV)
    emulator.clear_faults()


def _model(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(3)}"


async def _served(server, key: str, model: str, within: float = 6) -> None:
    """Wait until the running server sees the channels the CLI added (within 2 s by contract): all
    of them, not only the first one a reload between two `channels add` may have caught."""
    await asyncio.sleep(2.2)
    c = sdk(server, key)
    deadline = time.monotonic() + within
    while True:
        try:
            await c.models.retrieve(model)
            return
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _pair(server, emulator, key: str, model: str, upstream: str = "gpt-4o-mini",
                a_base: str | None = None, a_secret: str | None = None) -> tuple[str, str]:
    """Channel A (priority 0) and B (priority 1) serving `model` as `upstream`; returns their secrets."""
    extra = ("--model-map", f"{model}={upstream}")
    a = add_openai_channel(server, emulator, f"a-{model}", models=model, priority=0, extra=extra,
                           base_url=a_base, secret=a_secret)
    b = add_openai_channel(server, emulator, f"b-{model}", models=model, priority=1, extra=extra)
    await _served(server, key, model)
    return a, b


async def test_priority_and_model_map(server, emulator) -> None:
    key = server.make_key()
    model = _model("mapped")
    a, b = await _pair(server, emulator, key, model)
    c = sdk(server, key)
    for _ in range(3):
        reply = await c.chat.completions.create(model=model, messages=HI)
        assert reply.model == model  # shown under the client's name, served by gpt-4o-mini
    chunks = [ch async for ch in await c.chat.completions.create(model=model, messages=HI, stream=True)]
    assert {ch.model for ch in chunks} == {model}
    assert emulator.creates(a, "openai") == 4 and emulator.creates(b, "openai") == 0  # lowest number first


async def test_weights_inside_a_tier(server, emulator) -> None:
    key = server.make_key()
    model = _model("weighted")
    extra = ("--model-map", f"{model}=gpt-4o-mini")
    light = add_openai_channel(server, emulator, f"light-{model}", models=model, weight=1, extra=extra)
    heavy = add_openai_channel(server, emulator, f"heavy-{model}", models=model, weight=4, extra=extra)
    await _served(server, key, model)
    c = sdk(server, key)
    await asyncio.gather(*(c.chat.completions.create(model=model, messages=HI) for _ in range(40)))
    n_light, n_heavy = emulator.creates(light, "openai"), emulator.creates(heavy, "openai")
    assert n_light + n_heavy == 40 and 0 < n_light < n_heavy, (n_light, n_heavy)


@pytest.mark.parametrize("fault", ["500", "429", "timeout"])
async def test_failover_and_cooldown(server, emulator, fault: str) -> None:
    key = server.make_key()
    model = _model(f"fo{fault}")
    a, b = await _pair(server, emulator, key, model)
    rule = {"500": {"kind": "status", "status": 500},
            "429": {"kind": "status", "status": 429, "retry_after": 30},
            "timeout": {"kind": "timeout", "seconds": 4}}[fault]
    emulator.fault(provider="openai", op="create", secret=a, count=1, **rule)
    c = sdk(server, key)
    reply = await c.chat.completions.create(model=model, messages=HI)
    assert reply.choices[0].message.content and reply.model == model
    assert emulator.creates(b, "openai") == 1
    a_before = emulator.creates(a, "openai")
    for _ in range(3):  # A cools down: B takes the calls although A has the better priority
        await c.chat.completions.create(model=model, messages=HI)
    assert emulator.creates(b, "openai") == 4
    assert emulator.creates(a, "openai") == a_before


async def test_refused_connection_fails_over(server, emulator) -> None:
    key = server.make_key()
    model = _model("refused")
    _, b = await _pair(server, emulator, key, model, a_base=f"http://127.0.0.1:{free_port()}/v1")
    reply = await sdk(server, key).chat.completions.create(model=model, messages=HI)
    assert reply.choices[0].message.content
    assert emulator.creates(b, "openai") == 1


async def test_stream_cut_before_first_byte_fails_over(server, emulator) -> None:
    key = server.make_key()
    model = _model("cut")
    a, b = await _pair(server, emulator, key, model)
    emulator.fault(provider="openai", op="create", secret=a, count=1, kind="drop_after_accept", after_chunks=0)
    chunks = [ch async for ch in await sdk(server, key).chat.completions.create(model=model, messages=HI,
                                                                                stream=True)]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert emulator.creates(b, "openai") == 1


async def test_401_disables_the_secret_with_its_reason(server, emulator) -> None:
    key = server.make_key()
    model = _model("unauth")
    _, b = await _pair(server, emulator, key, model, a_secret="emu-not-a-valid-secret")
    reply = await sdk(server, key).chat.completions.create(model=model, messages=HI)
    assert reply.choices[0].message.content and emulator.creates(b, "openai") == 1
    deadline = time.monotonic() + 5
    while True:
        row = channel_rows(server)[f"a-{model}"]
        secret = row["secrets"][0]
        if not secret["enabled"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert not secret["enabled"] and "401" in secret["status_reason"], row
    assert "emu-not-a-valid-secret" not in server.cli("channels", "list")
    assert "disabled" in server.cli("channels", "list") or "401" in server.cli("channels", "list")
    # Re-enabled by the operator: routed to again.
    server.cli("channels", "enable", f"a-{model}")
    assert channel_rows(server)[f"a-{model}"]["secrets"][0]["enabled"]


async def test_only_channel_401_shows_the_upstream_error(server, emulator) -> None:
    key = server.make_key()
    model = _model("lone401")
    add_openai_channel(server, emulator, f"lone-{model}", models=model, secret="emu-wrong-secret",
                       extra=("--model-map", f"{model}=gpt-4o-mini"))
    await _served(server, key, model)
    with pytest.raises(openai.AuthenticationError) as exc:
        await sdk(server, key).chat.completions.create(model=model, messages=HI)
    assert exc.value.status_code == 401 and "emu-wrong-secret" not in exc.value.response.text


async def test_every_channel_failing_is_502_and_free(server, emulator) -> None:
    name, key = server.make_named_key(credits=100_000)
    model = _model("down")
    a, b = await _pair(server, emulator, key, model)
    for s in (a, b):
        emulator.fault(provider="openai", op="create", secret=s, kind="status", status=503, count=5)
    c = sdk(server, key)
    with pytest.raises(openai.APIStatusError) as exc:
        await c.chat.completions.create(model=model, messages=HI)
    assert_openai_error(exc.value, 502)
    with pytest.raises(openai.APIStatusError) as exc:
        async for _ in await c.chat.completions.create(model=model, messages=HI, stream=True):
            pass
    assert exc.value.status_code in (502, 503)
    rows = usage_records(server, name, 2)
    assert [r["credits"] for r in rows] == [0, 0] and rows[0]["status"] == 502
    assert credits_of(server, name) == 100_000


async def test_responses_false_is_a_clear_400(server, emulator) -> None:
    key = server.make_key()
    model = _model("noresp")
    add_openai_channel(server, emulator, f"nr-{model}", models=model,
                       extra=("--model-map", f"{model}=gpt-4o-mini", "--option", "responses=false"))
    await _served(server, key, model)
    c = sdk(server, key)
    with pytest.raises(openai.BadRequestError) as exc:
        await c.responses.create(model=model, input="hi")
    assert "chat/completions" in assert_openai_error(exc.value, 400)["message"]
    assert (await c.chat.completions.create(model=model, messages=HI)).choices


async def test_image_edit_follows_the_model_map(server, emulator) -> None:
    """An edit's multipart body goes up as sent, its `model` renamed by the channel's `--model-map`
    (the emulator edits with dall-e-2 only, and refuses any other name)."""
    name, key = server.make_named_key(credits=1_000_000)
    model = _model("editor")
    secret = add_openai_channel(server, emulator, f"ed-{model}", models=model,
                                extra=("--model-map", f"{model}=dall-e-2"))
    await _served(server, key, model)
    png = io.BytesIO()
    Image.new("RGBA", (32, 32), (200, 30, 30, 255)).save(png, "PNG")
    c = sdk(server, key)
    edited = await c.images.edit(model=model, image=("in.png", png.getvalue(), "image/png"), prompt="add a hat",
                                 size="256x256", n=2, response_format="b64_json")
    assert len(edited.data) == 2
    for item in edited.data:
        Image.open(io.BytesIO(base64.b64decode(item.b64_json))).verify()
    assert emulator.creates(secret, "openai") == 1
    row = usage_records(server, name, 1)[0]
    assert (row["route"], row["model"], row["status"], row["output_tokens"]) == ("images.edit", model, 200, 2)


async def test_cooldown_and_disable_reach_every_process(make_server, emulator) -> None:
    """Two processes on one PostgreSQL database: a secret that process A cooled down (429 with
    Retry-After: 30) or disabled (401) is not tried by process B either, a couple of seconds later."""
    with fresh_pg_database() as pg:
        env = {**ENV, "GENGATE_SECRET_KEY": secrets.token_urlsafe(24)}
        a = make_server(database_url=pg, sandbox=False, env=env)
        b = make_server(database_url=pg, sandbox=False, env=env)
        key = a.make_key()
        cooled, disabled = _model("xcool"), _model("xoff")
        a_cool, b_cool = await _pair(a, emulator, key, cooled)
        a_off, b_off = await _pair(a, emulator, key, disabled)
        await _served(b, key, cooled, within=0)
        await _served(b, key, disabled, within=0)
        emulator.fault(provider="openai", op="create", secret=a_cool, count=1, kind="status", status=429,
                       retry_after=30)
        emulator.fault(provider="openai", op="create", secret=a_off, count=1, kind="status", status=401)
        on_a, on_b = sdk(a, key), sdk(b, key)
        for model in (cooled, disabled):  # on A: the preferred channel fails, B serves the call
            assert (await on_a.chat.completions.create(model=model, messages=HI)).model == model
        a_calls = [emulator.creates(s, "openai") for s in (a_cool, a_off)]  # a fault's reply may go uncounted
        assert [emulator.creates(s, "openai") for s in (b_cool, b_off)] == [1, 1]
        await asyncio.sleep(2.0)  # one config check of B (every second) and the write behind A's failure
        for _ in range(3):  # on B: the fault rules are spent, yet A's channel is not tried
            for model in (cooled, disabled):
                assert (await on_b.chat.completions.create(model=model, messages=HI)).model == model
        assert [emulator.creates(s, "openai") for s in (b_cool, b_off)] == [4, 4]
        assert [emulator.creates(s, "openai") for s in (a_cool, a_off)] == a_calls  # not one call reached A
