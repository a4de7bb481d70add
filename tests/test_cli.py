"""The `gengate` CLI contract (interface.md "Install and run"): keys and channels, written straight to
the database (SQLite under the data dir, or PostgreSQL), without a running server."""

from __future__ import annotations

import base64
import json
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.timeout(300)  # each CLI call starts a Python process

KEY_LINE = re.compile(r"^sk-[A-Za-z0-9_-]{32,}$")
WHSEC = re.compile(r"whsec_([A-Za-z0-9+/]+={0,2})")


def keys_json(home, data_dir_last: bool = False) -> dict[str, dict]:
    out = home.cli_run("keys", "list", "--json", data_dir_last=data_dir_last).stdout
    return {k["name"]: k for k in json.loads(out.strip().splitlines()[-1])}


def channels_json(home, data_dir_last: bool = False) -> dict[str, dict]:
    out = home.cli_run("channels", "list", "--json", data_dir_last=data_dir_last).stdout
    return {c["name"]: c for c in json.loads(out.strip().splitlines()[-1])}


def assert_clean_failure(proc, code: int | None = None) -> None:
    assert proc.returncode != 0, proc
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def assert_all_fail(home, *cases: list[str]) -> None:
    """Run independent failing invocations at once (several CLI processes on one database); each must
    exit non-zero without a traceback."""
    with ThreadPoolExecutor(4) as pool:
        procs = list(pool.map(lambda args: home.cli_run(*args, check=False), cases))
    for args, proc in zip(cases, procs, strict=True):
        assert proc.returncode != 0, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stdout + proc.stderr, (args, proc.stderr)


def assert_not_stored(home, *needles: str) -> None:
    stored = home.stored_bytes()
    if home.database_url is None:
        assert any(p.endswith("gengate.db") for p in stored), sorted(stored)
    for needle in needles:
        for path, data in stored.items():
            assert needle.encode() not in data, f"{needle[:10]}... stored in clear in {path}"


# ------------------------------------------------------------------------------------------- keys
def test_keys_create_output_contract(home):
    proc = home.cli_run("keys", "create", "--name", "alice")
    lines = proc.stdout.strip().splitlines()
    assert lines, proc
    key = lines[-1]
    assert KEY_LINE.match(key), key
    assert key not in proc.stderr
    match = WHSEC.search(proc.stderr)
    assert match, proc.stderr
    whsec = match.group(0)
    assert len(base64.b64decode(match.group(1), validate=True)) >= 24
    assert "whsec_" not in proc.stdout

    # `--data-dir` after the subcommand is the same option.
    proc2 = home.cli_run("keys", "create", "--name", "bob", data_dir_last=True)
    key2 = proc2.stdout.strip().splitlines()[-1]
    assert KEY_LINE.match(key2) and key2 != key
    whsec2 = WHSEC.search(proc2.stderr).group(0)
    assert whsec2 != whsec

    # `keys webhook-secret NAME` prints the same secret on stdout.
    assert home.cli("keys", "webhook-secret", "alice").strip().splitlines()[-1] == whsec
    assert home.cli_run("keys", "webhook-secret", "bob", data_dir_last=True).stdout.strip() == whsec2

    assert set(keys_json(home)) == {"alice", "bob"}
    # Shown once, stored hashed: neither the key (nor its random part) nor the webhook secret is in clear.
    assert_not_stored(home, key, key[3:], key2, key2[3:], whsec[len("whsec_"):], whsec2[len("whsec_"):])


def test_keys_create_options_and_errors(home):
    home.cli("keys", "create", "--name", "limited", "--credits", "500", "--models", "vidu-*,stable",
             "--expires", "2030-01-01T00:00:00Z")
    home.cli("keys", "create", "--name", "open")
    keys = keys_json(home)
    assert keys["limited"]["credits"] == 500
    assert keys["limited"]["models"] == "vidu-*,stable"
    assert keys["limited"]["expires_at"] == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert keys["limited"]["revoked"] is False
    assert keys["open"]["credits"] is None and keys["open"]["models"] is None and keys["open"]["expires_at"] is None
    # The key is shown once: the list shows a hint only.
    assert all(len(k["hint"]) < 20 for k in keys.values())

    assert_all_fail(home,
                    ["keys", "create", "--name", "open"],  # duplicate name
                    ["keys", "create", "--name", "neg", "--credits", "-1"],
                    ["keys", "create", "--name", "when", "--expires", "next week"],
                    ["keys", "webhook-secret", "nobody"])
    assert set(keys_json(home)) == {"limited", "open"}


def test_keys_list_and_revoke(home):
    key = home.cli("keys", "create", "--name", "carol", "--credits", "42").strip().splitlines()[-1]
    home.cli("keys", "create", "--name", "dave")
    table = home.cli("keys", "list")
    assert "carol" in table and "dave" in table and "42" in table
    assert key not in table
    table_after = home.cli_run("keys", "list", data_dir_last=True).stdout
    assert "carol" in table_after

    proc = home.cli_run("keys", "revoke", "carol")
    assert "Traceback" not in proc.stderr
    keys = keys_json(home)
    assert keys["carol"]["revoked"] is True and keys["dave"]["revoked"] is False
    assert_clean_failure(home.cli_run("keys", "revoke", "carol", check=False))  # already revoked
    assert_clean_failure(home.cli_run("keys", "revoke", "nobody", check=False))
    # By id, with --data-dir after the subcommand.
    home.cli_run("keys", "revoke", str(keys["dave"]["id"]), data_dir_last=True)
    assert keys_json(home, data_dir_last=True)["dave"]["revoked"] is True


# ------------------------------------------------------------------------------------------- channels
def test_channels_add_list_enable_disable(home):
    s1, s2, s3 = (f"up-{secrets.token_urlsafe(24)}" for _ in range(3))
    out = home.cli("channels", "add", "--provider", "vidu", "--base-url", "http://127.0.0.1:9/vidu/",
                   "--key", s1, "--key", s2, "--name", "first", "--max-concurrency", "3",
                   "--priority", "5", "--weight", "2", "--models", "vidu-*")
    first_id = int(out.strip().splitlines()[-1])
    proc = home.cli_run("channels", "add", "--provider", "vidu", "--base-url", "https://api.example.com",
                        "--key", f"ak|{s3}", "--name", "second", data_dir_last=True)
    second_id = int(proc.stdout.strip().splitlines()[-1])
    assert first_id != second_id

    chans = channels_json(home)
    assert set(chans) == {"first", "second"}
    first = chans["first"]
    assert first["id"] == first_id and first["provider"] == "vidu"
    assert first["base_url"].rstrip("/") == "http://127.0.0.1:9/vidu"
    assert first["priority"] == 5 and first["weight"] == 2 and first["models"] == "vidu-*"
    assert first["enabled"] is True
    assert len(first["secrets"]) == 2
    assert all(s["max_concurrency"] == 3 and s["enabled"] for s in first["secrets"])
    assert chans["second"]["provider"] == "vidu" and len(chans["second"]["secrets"]) == 1
    table = home.cli("channels", "list")
    assert "first" in table and "second" in table
    listed = json.dumps(chans) + table
    for s in (s1, s2, s3):
        assert s not in listed  # secrets are never printed back

    home.cli("channels", "disable", "first")
    chans = channels_json(home, data_dir_last=True)
    assert chans["first"]["enabled"] is False and chans["second"]["enabled"] is True
    home.cli_run("channels", "enable", str(first_id), data_dir_last=True)
    assert channels_json(home)["first"]["enabled"] is True
    home.cli_run("channels", "disable", str(second_id), data_dir_last=True)
    assert channels_json(home)["second"]["enabled"] is False

    assert_all_fail(home, ["channels", "enable", "nope"], ["channels", "disable", "999999"])
    # The channel secrets are not stored in clear.
    assert_not_stored(home, s1, s2, s3)


def test_channels_add_errors_and_options(home):
    home.cli("channels", "add", "--provider", "vidu", "--base-url", "http://127.0.0.1:9/vidu", "--key", "k-1",
             "--name", "opts", "--option", "auth=jwt", "--option", "region=cn", "--option", "q=a=b")
    rows = home.db_query("SELECT options FROM channels WHERE name = 'opts'")
    assert json.loads(rows[0]["options"]) == {"auth": "jwt", "region": "cn", "q": "a=b"}

    base = ["channels", "add", "--provider", "vidu", "--base-url", "http://127.0.0.1:9/vidu", "--key", "k-1"]
    assert_all_fail(home,
                    [*base, "--name", "bad-opt", "--option", "novalue"],
                    [*base, "--name", "bad-opt2", "--option", "=v"],
                    [*base, "--name", "opts"],  # duplicate name
                    ["channels", "add", "--provider", "nosuch", "--base-url", "http://127.0.0.1:9", "--key", "k",
                     "--name", "x"],
                    ["channels", "add", "--provider", "vidu", "--base-url", "ftp://h", "--key", "k", "--name", "y"],
                    ["channels", "add", "--provider", "vidu", "--base-url", "http://h", "--name", "z"])  # no --key
    assert set(channels_json(home)) == {"opts"}
