"""Client helpers of the Runway family (`/runway/v1`): the official `runwayml` SDK pointed at gengate
(`sdk`, `sync_sdk`), `RunwayRaw` (raw HTTP for what the SDK cannot send), `assert_runway_error`
(Runway's error body), media checks and small images to animate."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from typing import Any

import aiohttp
import av
from PIL import Image
from runwayml import AsyncRunwayML, RunwayML

from harness.vidu import Reply, send

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def sdk(base: str, key: str, **kw: Any) -> AsyncRunwayML:
    """The async SDK on gengate (`base_url` = `http://HOST/runway`), without its own retries."""
    return AsyncRunwayML(base_url=base.rstrip("/") + "/runway", api_key=key, max_retries=0, **kw)


def sync_sdk(base: str, key: str, **kw: Any) -> RunwayML:
    return RunwayML(base_url=base.rstrip("/") + "/runway", api_key=key, max_retries=0, **kw)


def png_data_uri(width: int = 64, height: int = 36, color: tuple[int, int, int] = (200, 120, 40)) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def noisy_png_data_uri(side: int) -> str:
    """A PNG of noise (it does not compress): about side * side bytes, for large inline images."""
    out = io.BytesIO()
    Image.effect_noise((side, side), 120).convert("RGB").save(out, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def i2v(**over: Any) -> dict[str, Any]:
    """A valid `image_to_video` body (JSON field names)."""
    return {"model": "gen4_turbo", "promptImage": png_data_uri(), "ratio": "1280:720", "duration": 5,
            "promptText": "the lantern sways in the wind", **over}


class RunwayRaw:
    """Raw HTTP on gengate's `/runway/v1` with one key (None: no Authorization header) and one
    `X-Runway-Version` (None: none)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, key: str | None,
                 version: str | None = "2024-11-06") -> None:
        self.http, self.base, self.key, self.version = http, base.rstrip("/") + "/runway", key, version

    async def request(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                      headers: dict[str, str] | None = None) -> Reply:
        h = {"X-Runway-Version": self.version} if self.version else {}
        if self.key is not None:
            h["Authorization"] = f"Bearer {self.key}"
        h.update(headers or {})
        return await send(self.http, method, self.base + path, h, json_body=json_body, data=data, data_is_json=True)

    async def create(self, body: Any = None, action: str = "image_to_video", **kw: Any) -> Reply:
        return await self.request("POST", f"/v1/{action}", json_body=body, **kw)

    async def get(self, task_id: str) -> Reply:
        return await self.request("GET", f"/v1/tasks/{task_id}")

    async def delete(self, task_id: str) -> Reply:
        return await self.request("DELETE", f"/v1/tasks/{task_id}", headers={"Accept": "*/*"})


def assert_runway_error(reply: Reply, status: int, *, issue_path: list[Any] | None = None) -> dict[str, Any]:
    """Runway's body `{"error": str, "issues"?: [{code, path, ...}]}` with the expected status; with
    `issue_path`, a 400 whose `issues` name that path."""
    assert "Traceback" not in reply.text, reply.text
    assert reply.status == status, (reply.status, reply.text)
    body = reply.body
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], reply.text
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    if issue_path is not None:
        assert body["error"] == "Validation of body failed", body
        issues = body.get("issues")
        assert isinstance(issues, list) and issues, body
        for issue in issues:
            assert isinstance(issue.get("code"), str) and isinstance(issue.get("path"), list), issue
        assert issue_path in [i["path"] for i in issues], (issue_path, issues)
    return body


async def download(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url, allow_redirects=False) as resp:
        assert "Authorization" not in resp.request_info.headers
        assert resp.status == 200, (resp.status, await resp.text())
        return await resp.read()


def probe_mp4(data: bytes) -> tuple[int, int, float]:
    """(width, height, seconds) of a playable MP4, decoded frame by frame."""
    assert data[4:8] == b"ftyp" and b"moov" in data, data[:16]
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames >= 1
        seconds = container.duration / 1_000_000 if container.duration else float(stream.duration * stream.time_base)
        return stream.codec_context.width, stream.codec_context.height, seconds


def probe_png(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        assert img.format == "PNG", img.format
        return img.size


def runway_gateway(make_server: Any, emulator: Any, name: str, models: str | None = None) -> Iterator[tuple[Any, str]]:
    """For a module fixture (`yield from runway_gateway(...)`): a `gengate serve` (no sandbox) whose one
    Runway channel `name` (serving `models`, else the provider's defaults) is the standalone emulator
    with a secret of its own; yields (server, secret); clears the emulator's faults after the module."""
    server = make_server(sandbox=False, start=False)
    secret = emulator.new_secret()
    server.add_channel("runway", emulator.provider_url("runway"), secret, name=name,
                       extra=("--models", models) if models else ())
    server.start()
    server.upstream = emulator
    yield server, secret
    emulator.clear_faults()
