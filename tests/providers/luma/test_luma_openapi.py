"""Every Luma route is in `/openapi.json`, with its request body and Luma's `{"detail"}` envelope as the
answer to every 4XX/5XX (in process: the app after startup, no subprocess)."""

from __future__ import annotations

from pathlib import Path

import httpx

from gengate.app import create_app
from gengate.config import load_settings


async def test_luma_routes_are_documented(tmp_path: Path) -> None:
    app = create_app(load_settings({"data_dir": str(tmp_path / "data"), "sandbox": True}, env={}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            spec = (await client.get("/openapi.json")).json()
            unmatched = await client.get("/luma/dream-machine/v1/generations/x/upscale")
    base = "/luma/dream-machine/v1"
    want = {(f"{base}/generations", "post"), (f"{base}/generations", "get"), (f"{base}/generations/video", "post"),
            (f"{base}/generations/image", "post"), (f"{base}/generations/{{generation_id}}", "get"),
            (f"{base}/generations/{{generation_id}}", "delete"), (f"{base}/ping", "get")}
    got = {(p, m) for p, ops in spec["paths"].items() if p.startswith("/luma/") for m in ops}
    assert got == want
    for path, method in want:
        op = spec["paths"][path][method]
        assert op["tags"] == ["luma"] and op["operationId"].startswith("luma_")
        for status in ("4XX", "5XX"):
            assert op["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/LumaError")
    body = spec["paths"][f"{base}/generations/image"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/LumaImageRequest")
    assert spec["components"]["schemas"]["LumaError"]["properties"]["detail"]["type"] == "string"
    assert unmatched.status_code == 404 and unmatched.json() == {"detail": "Not Found"}

