"""`/openapi.json` documents every route every family adds (with its error envelope), and `/docs` works
with no network: it references only the gateway's own assets, which are served."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Mount

from gengate.app import create_app
from gengate.config import load_settings
from gengate.web.documented import DocumentedRoute
from gengate.web.routing import FallbackRoute


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[FastAPI, dict[str, Any]]]:
    """The app after startup (every family's routes installed) and its OpenAPI document."""
    data_dir: Path = tmp_path_factory.mktemp("openapi") / "data"
    app = create_app(load_settings({"data_dir": str(data_dir), "sandbox": True}, env={}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            reply = await client.get("/openapi.json")
            assert reply.status_code == 200
            yield app, reply.json()


def _ref_name(schema: dict[str, Any]) -> str:
    return schema["$ref"].removeprefix("#/components/schemas/")


async def test_every_route_of_every_family_is_documented(gateway: tuple[FastAPI, dict[str, Any]]) -> None:
    app, spec = gateway
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    walked: set[tuple[str, str]] = set()
    families: set[str] = set()
    for route in app.routes:
        if isinstance(route, (Mount, FallbackRoute)) or not getattr(route, "include_in_schema", True):
            continue  # the sandbox and docs assets mounts, each family's 404/405, /openapi.json and /docs
        assert isinstance(route, APIRoute), f"{route!r} is not documented: declare it with Family.route"
        for method in route.methods:
            walked.add((route.path_format, method))
            operation = spec["paths"][route.path_format][method.lower()]
            assert operation["operationId"] and operation["tags"], (route.path, method)
            if not (isinstance(route, DocumentedRoute) and route.family):
                continue
            families.add(route.family)
            envelope = route.responses["4XX"]["model"].__name__
            for status in ("4XX", "5XX"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert _ref_name(schema) == envelope, (route.path, method, status)
                assert envelope in spec["components"]["schemas"]
    assert walked == documented
    assert {"vidu", "tasks", "files"} <= families
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_request_and_reply_schemas(gateway: tuple[FastAPI, dict[str, Any]]) -> None:
    _, spec = gateway
    schemas = spec["components"]["schemas"]
    create = spec["paths"]["/vidu/v1/tasks"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert _ref_name(body) == "ViduCreateRequest"
    # The Vidu format passes unknown keys through: the documented body allows them, at every level.
    for name in ("ViduCreateRequest", "ViduInput", "ViduSettings", "ViduPrompt"):
        assert schemas[name]["additionalProperties"] is True, name
    assert set(schemas["ViduCreateRequest"]["properties"]["type"]["enum"]) >= {"text2video", "img2video", "upscale"}
    assert create["security"] == [{"ClientKey": []}]
    assert _ref_name(create["responses"]["200"]["content"]["application/json"]["schema"]) == "ViduTask"
    assert _ref_name(create["responses"]["4XX"]["content"]["application/json"]["schema"]) == "ViduError"

    state = spec["paths"]["/vidu/v1/tasks/state"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in state["parameters"]] == [("id", "query", True)]
    assert _ref_name(state["responses"]["200"]["content"]["text/event-stream"]["schema"]) == "ViduStateEvent"

    unified = spec["paths"]["/v1/tasks/{task_id}"]["get"]
    assert [(p["name"], p["in"]) for p in unified["parameters"]] == [("task_id", "path")]
    assert _ref_name(unified["responses"]["200"]["content"]["application/json"]["schema"]) == "TaskObject"
    assert _ref_name(unified["responses"]["4XX"]["content"]["application/json"]["schema"]) == "OpenAIError"
    assert set(schemas["TaskObject"]["properties"]["status"]["enum"]) == {
        "queued", "in_progress", "succeeded", "failed", "cancelled"}
    assert "requestBody" not in spec["paths"]["/v1/tasks/{task_id}/cancel"]["post"]


# ------------------------------------------------------------------------------ the real server
@pytest.fixture(scope="module")
def server(make_server: Any) -> Any:
    return make_server()


async def test_served_openapi_lists_the_families(server: Any) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        spec = (await client.get("/openapi.json")).json()
    paths = spec["paths"]
    assert set(paths["/vidu/v1/tasks"]) == {"post"}
    assert set(paths["/vidu/v1/tasks/{task_id}"]) == {"get", "delete"}
    assert set(paths["/vidu/v1/tasks/state"]) == {"get"}
    assert set(paths["/v1/tasks"]) == {"get"}
    assert set(paths["/v1/tasks/{task_id}"]) == {"get", "delete"}
    assert set(paths["/v1/tasks/{task_id}/events"]) == {"get"}
    assert set(paths["/v1/tasks/{task_id}/cancel"]) == {"post"}
    assert not any(p.startswith("/_sandbox") for p in paths)


def _vidu_envelope(reply: httpx.Response, status: int, reason: str) -> None:
    body = reply.json()
    assert reply.status_code == status, reply.text
    assert (body["code"], body["reason"]) == (status, reason), body
    assert body["metadata"]["trace_id"] and "detail" not in body


def _openai_envelope(reply: httpx.Response, status: int, code: str) -> None:
    body = reply.json()
    assert reply.status_code == status, reply.text
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_unknown_paths_and_methods_answer_in_the_family_envelope(server: Any) -> None:
    key = server.make_key()
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
        for path in ("/vidu/v1/nope", "/vidu/v1/tasks/1/2/3", "/vidu/ent/v2/unknown", "/vidu"):
            _vidu_envelope(await client.get(path), 404, "NotFound")
        for path in ("/v1/tasks/abc/nope", "/v1/tasks/a/b/c", "/v1/tasks/a/events/b"):
            _openai_envelope(await client.get(path), 404, "unknown_url")
        reply = await client.put("/vidu/v1/tasks/123")
        _vidu_envelope(reply, 405, "BadRequest")
        assert reply.headers["allow"] == "GET, DELETE"
        reply = await client.get("/vidu/v1/tasks")
        _vidu_envelope(reply, 405, "BadRequest")
        assert reply.headers["allow"] == "POST"
        reply = await client.patch("/v1/tasks/abc")
        _openai_envelope(reply, 405, "method_not_allowed")
        assert reply.headers["allow"] == "GET, DELETE"
        reply = await client.get("/v1/tasks/abc/cancel")
        _openai_envelope(reply, 405, "method_not_allowed")
        assert reply.headers["allow"] == "POST"


async def test_docs_load_only_same_origin_assets(server: Any) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        reply = await client.get("/docs")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/html")
        html = reply.text
        assert not re.search(r"(https?:)?//[A-Za-z0-9]", html.replace("window.location.origin", "")), html
        assert re.search(r'"validatorUrl":\s*null', html)  # the online spec validator is never called
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert {a.rsplit(".", 1)[-1] for a in assets} >= {"js", "css"}, assets
        for asset in [*assets, re.search(r"url: '([^']+)'", html).group(1)]:  # type: ignore[union-attr]
            assert asset.startswith("/") and not asset.startswith("//"), asset
            got = await client.get(asset)
            assert got.status_code == 200 and len(got.content) > 1000, (asset, got.status_code)
            if asset.endswith(".js"):
                assert "javascript" in got.headers["content-type"] and b"SwaggerUIBundle" in got.content
            if asset.endswith(".css"):
                assert got.headers["content-type"].startswith("text/css")
        assert (await client.get("/redoc")).status_code == 404
