"""The operator's CLI against a running server's data dir (subprocesses, nothing mocked):
`tasks list|show|watch` (watch reaches the terminal state), `usage` (table and --json), the warning for
an `--expires` in the past, and the clear error (no empty database made) for a `--data-dir` that
points at nothing."""

from __future__ import annotations

import json

import pytest
from harness.cli import cli_run

pytestmark = pytest.mark.timeout(300)

BODY = {"type": "text2video", "input": {"prompts": [{"type": "text", "content": "a red kite"}]},
        "settings": {"duration": 4, "model_version": "2.0", "resolution": "720p"}}


async def test_tasks_and_usage_commands(make_server, vidu) -> None:
    server = make_server()
    name, key = server.make_named_key(credits=10**9)
    client = vidu(server, key)
    ids = [str((await client.create_ok(BODY))["id"]) for _ in range(2)]

    # watch: live bars on stderr until both are terminal; one line per task on stdout; exit 0 (all succeeded)
    proc = server.cli_run("tasks", "watch", *ids, "--interval", "0.3", "--timeout", "120", check=False)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert proc.stdout.split("\n")[:2] == [f"{ids[0]} succeeded", f"{ids[1]} succeeded"], proc.stdout
    assert "100%" in proc.stderr, proc.stderr

    listed = json.loads(server.cli("tasks", "list", "--json"))
    mine = {t["id"]: t for t in listed if t["id"] in ids}
    assert set(mine) == set(ids), listed
    assert all(t["status"] == "succeeded" and t["provider"] == "vidu" and t["key"] == name for t in mine.values())
    assert {t["id"] for t in json.loads(server.cli("tasks", "list", "--json", "--key", name))} == set(ids)
    assert json.loads(server.cli("tasks", "list", "--json", "--state", "failed", "--key", name)) == []
    table = server.cli("tasks", "list", "--provider", "vidu")
    assert ids[0] in table and "succeeded" in table

    shown = json.loads(server.cli("tasks", "show", ids[0], "--json"))
    assert shown["id"] == ids[0] and shown["status"] == "succeeded"
    assert shown["events"] and shown["events"][-1]["to"] == "succeeded", shown["events"]
    assert "events" in server.cli("tasks", "show", ids[0])
    missing = server.cli_run("tasks", "show", "no-such-task", check=False)
    assert missing.returncode == 2 and "no task no-such-task" in missing.stderr

    by_key = {r["group"]: r for r in json.loads(server.cli("usage", "--by", "key", "--json"))}
    assert by_key[name]["tasks"] == 2 and by_key[name]["credits"] > 0, by_key
    table = server.cli("usage", "--by", "model", "--since", "1h")
    assert "usage by model" in table and "total" in table
    bad = server.cli_run("usage", "--by", "planet", check=False)
    assert bad.returncode == 2 and "--by must be one of" in bad.stderr
    bad = server.cli_run("tasks", "list", "--state", "done", check=False)
    assert bad.returncode == 2 and "--state must be one of" in bad.stderr


def test_expires_in_the_past_warns(make_server) -> None:
    server = make_server(sandbox=False, start=False)
    proc = server.cli_run("keys", "create", "--name", "late", "--expires", "2020-01-01T00:00:00Z", "--rpm", "5")
    assert "warning: --expires" in proc.stderr and "in the past" in proc.stderr, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("sk-")
    proc = server.cli_run("keys", "create", "--name", "on-time", "--expires", "2999-01-01T00:00:00Z")
    assert "warning" not in proc.stderr, proc.stderr
    keys = {k["name"]: k for k in json.loads(server.cli("keys", "list", "--json"))}
    assert keys["late"]["rpm"] == 5 and keys["on-time"]["rpm"] is None


@pytest.mark.parametrize("command", [("tasks", "list"), ("usage",), ("keys", "list"), ("channels", "list"),
                                     ("keys", "revoke", "x")])
def test_a_data_dir_that_points_at_nothing_is_an_error(tmp_path, command) -> None:
    missing = tmp_path / "no-such-dir"
    proc = cli_run(missing, *command, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "no gengate database" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not missing.exists()  # nothing created
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli_run(empty, *command, check=False)
    assert proc.returncode == 2 and "has no gengate.db" in proc.stderr, proc.stderr
    assert list(empty.iterdir()) == []
