"""The admin JSON API (`/admin/api`, interface.md "Operators and key holders") and the OpenAI legacy
billing endpoints, over HTTP against a real `gengate serve --sandbox` subprocess, on SQLite and
PostgreSQL. Every reply of the module is kept and checked for secrets at the end."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

pytestmark = pytest.mark.timeout(240)

API = "/admin/api"
KEY_FIELDS = {"id", "name", "credits", "used", "models", "rpm", "expires_at", "disabled", "revoked", "created_at"}
ROUTES = [("GET", "/keys"), ("POST", "/keys"), ("GET", "/keys/1"), ("PATCH", "/keys/1"), ("DELETE", "/keys/1"),
          ("GET", "/channels"), ("POST", "/channels"), ("GET", "/channels/1"), ("PATCH", "/channels/1"),
          ("DELETE", "/channels/1"), ("POST", "/channels/1/test"), ("GET", "/tasks"), ("GET", "/tasks/x"),
          ("GET", "/usage"), ("GET", "/requests")]
VIDU_BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat"}]},
             "settings": {"duration": 4, "model": "vidu-1"}}
CHANNEL_SECRET = "sk-upstream-" + "s3cr3t" * 6


@pytest.fixture(scope="module")
def replies(backend) -> list[str]:  # one list per backend
    return []


class Admin:
    def __init__(self, http: Any, server: Any, replies: list[str]) -> None:
        self.http, self.server, self.replies = http, server, replies

    async def call(self, method: str, path: str, body: Any = None, token: str | None = "admin",
                   params: dict[str, str] | None = None) -> tuple[int, Any]:
        headers = {}
        if token == "admin":
            headers["Authorization"] = f"Bearer {self.server.admin_token}"
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.request(method, self.server.url + API + path, json=body, headers=headers,
                                     params=params) as resp:
            text = await resp.text()
            self.replies.append(text)
            return resp.status, (await resp.json(content_type=None)) if text else None


@pytest.fixture
def admin(http, sandbox_server, replies) -> Admin:
    return Admin(http, sandbox_server, replies)


def assert_admin_error(body: Any, code: str | None = None) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"], body
    if code:
        assert body["error"]["code"] == code, body


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_refuses_no_token_and_a_client_key(admin, sandbox_server, method, path):
    key = sandbox_server.make_key()
    for token in (None, key, sandbox_server.admin_token + "x"):
        status, body = await admin.call(method, path, {"name": "x"}, token=token)
        assert status == 401, (token, status, body)
        assert_admin_error(body, "unauthorized")


async def test_keys_create_list_top_up_limit_revoke(admin, sandbox_server, http):
    status, made = await admin.call("POST", "/keys", {"name": "adm-limited", "credits": 5000, "rpm": 60,
                                                      "models": ["vidu-*", "gpt-4o-mini"]})
    assert status == 201, made
    assert set(made) == KEY_FIELDS | {"key"} and made["key"].startswith("sk-")
    assert made["credits"] == 5000 and made["used"] == 0 and made["rpm"] == 60
    assert made["models"] == ["vidu-*", "gpt-4o-mini"]
    assert made["revoked"] is False and made["disabled"] is False and isinstance(made["created_at"], int)
    status, dup = await admin.call("POST", "/keys", {"name": "adm-limited"})
    assert status == 400, dup
    assert_admin_error(dup)
    for bad_body in ({"name": "x", "credits": "lots"}, {"name": "x", "color": "red"}, {"name": ""},
                     {"name": "x", "models": "gpt-4o"}, {"name": "x", "expires_at": "soon"}, [1, 2]):
        status, bad = await admin.call("POST", "/keys", bad_body)
        assert status == 400, (bad_body, bad)
        assert_admin_error(bad)
    async with admin.http.post(sandbox_server.url + API + "/keys", data=b"{not json",
                               headers={"Authorization": f"Bearer {sandbox_server.admin_token}"}) as resp:
        assert resp.status == 400
        assert_admin_error(await resp.json(), "invalid_json")
    status, listing = await admin.call("GET", "/keys")
    assert "x" not in [k["name"] for k in listing["data"]]  # nothing created by a refused body

    status, listing = await admin.call("GET", "/keys")
    assert status == 200 and set(listing) == {"data", "has_more"}
    item = next(k for k in listing["data"] if k["id"] == made["id"])
    assert set(item) == KEY_FIELDS  # the key itself is shown once, never again
    ids = [k["id"] for k in listing["data"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    status, first = await admin.call("GET", "/keys", params={"limit": "1"})
    assert len(first["data"]) == 1 and first["has_more"] is (len(ids) > 1)
    if len(ids) > 1:
        status, second = await admin.call("GET", "/keys", params={"limit": "1", "after": str(first["data"][0]["id"])})
        assert second["data"][0]["id"] == ids[1]

    status, topped = await admin.call("PATCH", f"/keys/{made['id']}", {"add_credits": 1000})
    assert status == 200 and topped["credits"] == 6000, topped
    status, limited = await admin.call("PATCH", f"/keys/{made['id']}", {"models": None,
                                                                         "expires_at": "2099-01-01T00:00:00Z"})
    assert status == 200 and limited["models"] is None and limited["expires_at"] == 4070908800, limited
    status, set_to = await admin.call("PATCH", f"/keys/{made['id']}", {"credits": 42})
    assert status == 200 and set_to["credits"] == 42
    assert (await admin.call("GET", "/keys/999999"))[0] == 404

    status, rated = await admin.call("PATCH", f"/keys/{made['id']}", {"rpm": 30})
    assert status == 200 and rated["rpm"] == 30
    assert (await admin.call("PATCH", f"/keys/{made['id']}", {"rpm": 0}))[0] == 400
    assert (await admin.call("PATCH", f"/keys/{made['id']}", {"disabled": "yes"}))[0] == 400
    assert await key_status(http, sandbox_server, made["key"], 200)
    status, off = await admin.call("PATCH", f"/keys/{made['id']}", {"disabled": True})
    assert status == 200 and off["disabled"] is True and off["revoked"] is False
    assert await key_status(http, sandbox_server, made["key"], 401)
    status, on = await admin.call("PATCH", f"/keys/{made['id']}", {"disabled": False})
    assert status == 200 and on["disabled"] is False
    assert await key_status(http, sandbox_server, made["key"], 200)
    status, revoked = await admin.call("DELETE", f"/keys/{made['id']}")
    assert status == 200 and revoked["revoked"] is True
    status, still = await admin.call("GET", f"/keys/{made['id']}")
    assert status == 200 and still["revoked"] is True and set(still) == KEY_FIELDS
    assert await key_status(http, sandbox_server, made["key"], 401), "a revoked key still works after 2 s"


async def key_status(http, server, key: str, wanted: int, within: float = 2.5) -> bool:
    """Whether the key's requests answer `wanted` within `within` seconds (every process sees a change
    of a key within 2 s)."""
    deadline = time.monotonic() + within
    while True:
        async with http.get(server.url + "/v1/tasks", headers={"Authorization": f"Bearer {key}"}) as r:
            if r.status == wanted:
                return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)


async def test_channels_add_list_health_toggle_test_delete(admin, sandbox_server):
    status, listing = await admin.call("GET", "/channels")
    assert status == 200 and set(listing) == {"data", "has_more"}
    sandbox = next(c for c in listing["data"] if c["name"] == "sandbox-vidu")
    secret = sandbox["secrets"][0]
    assert len(secret["fingerprint"]) <= 12 and secret["state"] == "ok"
    assert secret["max_concurrency"] is not None and secret["running"] >= 0

    body = {"provider": "vidu", "base_url": sandbox_server.url + "/_sandbox/vidu", "keys": [CHANNEL_SECRET],
            "name": "adm-wrong-secret", "models": ["vidu-*"], "priority": 5, "max_concurrency": 3}
    status, made = await admin.call("POST", "/channels", body)
    assert status == 201, made
    assert made["name"] == "adm-wrong-secret" and made["provider"] == "vidu" and made["priority"] == 5
    assert made["secrets"][0]["max_concurrency"] == 3 and made["secrets"][0]["running"] == 0
    status, bad = await admin.call("POST", "/channels", {**body, "provider": "nope", "name": "x2"})
    assert status == 400
    assert_admin_error(bad)
    status, bad = await admin.call("POST", "/channels", {**body, "keys": [], "name": "x3"})
    assert status == 400

    status, tested = await admin.call("POST", f"/channels/{made['id']}/test")
    assert status == 200, tested
    assert [r["status"] for r in tested["data"]] == ["unauthorized"] and tested["ok"] is False
    assert tested["data"][0]["fingerprint"] == made["secrets"][0]["fingerprint"]
    status, tested = await admin.call("POST", f"/channels/{sandbox['id']}/test")
    assert status == 200 and tested["ok"] is True and tested["data"][0]["latency_ms"] >= 0, tested

    # Routed first (priority -10), the wrong secret is refused upstream: gengate disables it, and the
    # listing says why; the task fails over to the sandbox channel.
    key = sandbox_server.make_key(credits=1_000_000)
    status, raised = await admin.call("PATCH", f"/channels/{made['id']}", {"priority": -10})
    assert status == 200 and raised["priority"] == -10
    await asyncio.sleep(1.2)  # every process reloads its routing table within CONFIG_CHECK_SECONDS
    async with admin.http.post(sandbox_server.url + "/vidu/v1/tasks", json=VIDU_BODY,
                               headers={"Authorization": f"Token {key}"}) as resp:
        assert resp.status == 200, await resp.text()
    deadline = time.monotonic() + 20
    while True:
        status, health = await admin.call("GET", f"/channels/{made['id']}")
        state = health["secrets"][0]["state"]
        if state != "ok":
            break
        assert time.monotonic() < deadline, health
        await asyncio.sleep(0.3)
    assert state == "disabled (upstream rejected the secret (HTTP 401))", health
    assert health["secrets"][0]["enabled"] is False
    assert health["secrets"][0]["status_reason"] == "upstream rejected the secret (HTTP 401)"

    status, off = await admin.call("PATCH", f"/channels/{made['id']}", {"enabled": False})
    assert status == 200 and off["enabled"] is False and off["status_reason"] == "disabled by the operator"
    status, on = await admin.call("PATCH", f"/channels/{made['id']}", {"enabled": True, "weight": 3})
    assert status == 200 and on["enabled"] is True and on["weight"] == 3
    assert on["secrets"][0]["state"] == "ok"  # enabling again also re-enables its secrets
    status, gone = await admin.call("DELETE", f"/channels/{made['id']}")
    assert status == 200 and gone["deleted"] is True
    status, listing = await admin.call("GET", "/channels")
    assert made["id"] not in [c["id"] for c in listing["data"]]
    assert (await admin.call("GET", f"/channels/{made['id']}"))[0] == 404


async def test_tasks_find_filter_and_trail(admin, sandbox_server, http):
    name, key = sandbox_server.make_named_key(credits=1_000_000)
    async with http.post(sandbox_server.url + "/vidu/v1/tasks", json=VIDU_BODY,
                         headers={"Authorization": f"Token {key}"}) as resp:
        assert resp.status == 200, await resp.text()
        task_id = (await resp.json())["id"]
    status, keys = await admin.call("GET", "/keys")
    key_id = next(k["id"] for k in keys["data"] if k["name"] == name)
    status, found = await admin.call("GET", "/tasks", params={"provider": "vidu", "key_id": str(key_id)})
    assert status == 200 and [t["id"] for t in found["data"]] == [task_id], found
    item = found["data"][0]
    assert item["key_id"] == key_id and item["channel"] == "sandbox-vidu" and item["provider"] == "vidu"
    assert item["object"] == "task" and item["status"] in ("queued", "in_progress", "succeeded")
    assert (await admin.call("GET", "/tasks", params={"state": "bogus"}))[0] == 400
    status, none = await admin.call("GET", "/tasks", params={"model": "no-such-model", "key_id": str(key_id)})
    assert none["data"] == []

    deadline = time.monotonic() + 60
    while True:
        status, one = await admin.call("GET", f"/tasks/{task_id}")
        assert status == 200, one
        if one["status"] in ("succeeded", "failed"):
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.5)
    assert one["status"] == "succeeded" and one["outputs"] and one["outputs"][0]["url"].startswith("http")
    assert [e["to"] for e in one["events"]][-1] == "succeeded"
    assert all(set(e) >= {"from", "to", "reason", "at"} for e in one["events"])
    status, by_state = await admin.call("GET", "/tasks", params={"state": "succeeded", "key_id": str(key_id)})
    assert [t["id"] for t in by_state["data"]] == [task_id]
    status, missing = await admin.call("GET", "/tasks/nope")
    assert status == 404
    assert_admin_error(missing, "not_found")


async def test_usage_and_request_log(admin, sandbox_server):
    name, key = sandbox_server.make_named_key()
    client = openai.AsyncOpenAI(base_url=sandbox_server.url + "/v1", api_key=key, max_retries=0)
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    tokens = reply.usage.prompt_tokens, reply.usage.completion_tokens
    deadline = time.monotonic() + 10
    while True:
        status, log = await admin.call("GET", "/requests")
        assert status == 200 and set(log) == {"data", "has_more"}
        mine = [r for r in log["data"] if r["model"] == "gpt-4o-mini"]
        if mine:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    record = mine[0]
    assert (record["input_tokens"], record["output_tokens"]) == tokens and record["credits"] >= 1
    assert record["channel"] == "sandbox-openai" and record["status"] == 200
    for group_by in ("hour", "day", "model", "key", "channel", "provider"):
        status, usage = await admin.call("GET", "/usage", params={"group_by": group_by})
        assert status == 200, usage
        for row in usage["data"]:
            assert set(row) == {"group", "requests", "tasks", "errors", "input_tokens", "output_tokens", "credits"}
        groups = {r["group"]: r for r in usage["data"]}
        expected = {"model": "gpt-4o-mini", "key": name, "channel": "sandbox-openai", "provider": "openai"}
        if group_by in expected:
            row = groups[expected[group_by]]
            assert row["requests"] >= 1 and row["input_tokens"] >= tokens[0] and row["credits"] >= 1
        if group_by == "key":
            assert groups[name] == {"group": name, "requests": 1, "tasks": 0, "errors": 0,
                                    "input_tokens": tokens[0], "output_tokens": tokens[1],
                                    "credits": record["credits"]}
    status, empty = await admin.call("GET", "/usage", params={"group_by": "model", "to": "2001-01-01T00:00:00Z"})
    assert status == 200 and empty["data"] == []
    assert (await admin.call("GET", "/usage", params={"group_by": "week"}))[0] == 400


async def _billing(http, server, key: str, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.get(server.url + "/v1/dashboard/billing/" + path, params=params,
                        headers={"Authorization": f"Bearer {key}"}) as resp:
        return resp.status, await resp.json()


async def test_billing_limited_and_unlimited(sandbox_server, http, replies):
    _, limited = sandbox_server.make_named_key(credits=2_000_000)
    _, unlimited = sandbox_server.make_named_key()
    status, sub = await _billing(http, sandbox_server, limited, "subscription")
    assert status == 200 and sub == {"object": "billing_subscription", "has_payment_method": True,
                                     "hard_limit_usd": 2.0, "soft_limit_usd": 2.0, "system_hard_limit_usd": 2.0,
                                     "access_until": 0}, sub
    status, sub = await _billing(http, sandbox_server, unlimited, "subscription")
    assert status == 200 and sub["hard_limit_usd"] == 100000000
    assert (await _billing(http, sandbox_server, limited, "usage")) == (200, {"object": "list", "total_usage": 0})

    spent: dict[str, int] = {}
    for key in (limited, unlimited):
        client = openai.AsyncOpenAI(base_url=sandbox_server.url + "/v1", api_key=key, max_retries=0)
        await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "bill me"}])
        deadline = time.monotonic() + 10
        while True:
            status, usage = await _billing(http, sandbox_server, key, "usage")
            if usage["total_usage"] > 0:
                await asyncio.sleep(0.3)  # the settlement of a limited key lands in the same batch
                status, usage = await _billing(http, sandbox_server, key, "usage")
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
        spent[key] = round(usage["total_usage"] * 10_000)
        assert spent[key] >= 1
    remaining = sandbox_server.db_query(f"SELECT credits FROM keys WHERE key_hint = '{limited[:7]}'")[0]["credits"]
    assert remaining == 2_000_000 - spent[limited]
    status, sub = await _billing(http, sandbox_server, limited, "subscription")
    assert sub["hard_limit_usd"] == 2.0  # the grant: remaining + spent
    status, sub = await _billing(http, sandbox_server, unlimited, "subscription")
    assert sub["hard_limit_usd"] == 100000000
    status, window = await _billing(http, sandbox_server, limited, "usage",
                                    {"start_date": "2001-01-01", "end_date": "2001-02-01"})
    assert status == 200 and window["total_usage"] == 0
    status, bad = await _billing(http, sandbox_server, limited, "usage", {"start_date": "yesterday"})
    assert status == 400 and bad["error"]["type"] == "invalid_request_error"
    for headers in ({}, {"Authorization": f"Bearer {sandbox_server.admin_token}"}):
        async with http.get(sandbox_server.url + "/v1/dashboard/billing/subscription", headers=headers) as resp:
            assert resp.status == 401
            assert "error" in await resp.json()


def test_no_secret_in_any_reply(sandbox_server, replies):
    assert len(replies) > 50
    text = "\n".join(replies)
    for secret in (CHANNEL_SECRET, sandbox_server.sandbox_secret(), sandbox_server.admin_token):
        assert secret not in text
    assert text.count("sk-") == 1  # the one key created through the API, shown once in its 201
    assert "secret_enc" not in text and "key_hash" not in text
