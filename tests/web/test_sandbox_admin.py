"""`serve --sandbox` keeps its upstream to itself (interface.md "Emulator fault rules", last paragraph;
"Operators and key holders" → "Admin token"): the sandbox upstream secret is random per database,
and the in-process emulator's controls (`/_sandbox/_emulator/...`) need the admin token."""

from __future__ import annotations

import signal
import stat

import pytest

TASKS = "/_sandbox/vidu/vidu/v1/tasks"
BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a paper boat"}]},
        "settings": {"duration": 4}}
CONTROLS = [("GET", "stats", None), ("GET", "faults", None), ("GET", "caps", None),
            ("POST", "hold", {"provider": "vidu", "on": False}), ("POST", "reset", {"counters_only": True})]


def admin_error(body: object) -> None:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"], body


async def upstream_create(http, server, secret: str) -> int:
    async with http.post(server.url + TASKS, json=BODY, headers={"Authorization": f"Token {secret}"}) as resp:
        return resp.status


async def test_the_old_fixed_secret_is_refused_by_the_sandbox_upstream(sandbox_server, http):
    secret = sandbox_server.secret
    assert secret and secret != "sandbox-secret" and len(secret) >= 32
    assert await upstream_create(http, sandbox_server, "sandbox-secret") == 401
    assert await upstream_create(http, sandbox_server, secret) == 200  # the route itself works


@pytest.mark.parametrize(("method", "path", "body"), CONTROLS)
async def test_controls_need_the_admin_token(sandbox_server, http, method, path, body):
    url = f"{sandbox_server.url}/_sandbox/_emulator/{path}"
    key = sandbox_server.make_key()
    token = sandbox_server.admin_token
    assert token and not token.startswith("sk-")
    for headers in ({}, {"Authorization": f"Bearer {key}"}, {"Authorization": f"Token {key}"},
                    {"Authorization": f"Bearer {token}x"}, {"Authorization": f"Basic {token}"}):
        async with http.request(method, url, json=body, headers=headers) as resp:
            assert resp.status == 401, (headers, resp.status, await resp.text())
            admin_error(await resp.json())
    async with http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200, await resp.text()


async def test_no_way_around_the_controls_guard(sandbox_server, http):
    for path in ("/_sandbox//_emulator/stats", "/_sandbox/%5Femulator/stats", "/_sandbox/_emulator/stats/",
                 "/_sandbox/./_emulator/stats"):
        async with http.get(sandbox_server.url + path, allow_redirects=False) as resp:
            assert resp.status != 200, (path, await resp.text())


def test_admin_token_file_is_private_and_the_cli_prints_it(sandbox_server):
    path = sandbox_server.data_dir / "admin.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    assert token.startswith("gga-") and len(token) >= 40
    assert sandbox_server.cli("admin", "token").strip() == token
    assert sandbox_server.cli_run("admin", "token", data_dir_last=True).stdout.strip() == token


def test_gengate_admin_token_wins(backend, make_server):
    server = make_server(database_url=backend.new_database(), env={"GENGATE_ADMIN_TOKEN": "operator-chosen-token"})
    assert server.cli("admin", "token").strip() == "operator-chosen-token"
    assert not (server.data_dir / "admin.token").exists()  # nothing generated while the variable is set
    status, body = server.upstream.control("GET", "stats")
    assert status == 200, body
    server.extra_env.pop("GENGATE_ADMIN_TOKEN")
    stored = server.cli("admin", "token").strip()  # the database's own, unused while the variable is set
    assert stored.startswith("gga-") and stored != "operator-chosen-token"
    server.extra_env["GENGATE_ADMIN_TOKEN"] = "operator-chosen-token"
    server.upstream.token = lambda: stored
    status, body = server.upstream.control("GET", "stats")
    assert status == 401, body


def test_each_database_has_its_own_sandbox_secret_kept_across_restarts(backend, make_server):
    a = make_server(database_url=backend.new_database())
    b = make_server(database_url=backend.new_database())
    secret_a, secret_b = a.secret, b.secret
    token_a = a.admin_token
    assert secret_a != secret_b and a.admin_token != b.admin_token
    a.restart(signal.SIGTERM)
    a.secret = None  # read it again from the database
    assert a.secret == secret_a and a.admin_token == token_a
    assert a.upstream.counters(secret_a) is not None  # the controls take the same token after the restart
