"""The CLI runner: `python -m gengate ...` as a subprocess, with the fast test timings and none of
the outer environment's GENGATE_* settings."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Small timings so that tasks finish in seconds (all GENGATE_* settings, config.py).
FAST_ENV = {
    "GENGATE_POLL_INTERVAL": "0.3",
    "GENGATE_POLL_JITTER": "0.1",
    "GENGATE_POLLER_TICK": "0.1",
    "GENGATE_SANDBOX_TASK_SECONDS": "2",
    "GENGATE_LEASE_SECONDS": "5",
    "GENGATE_BACKOFF_BASE": "0.2",
    "GENGATE_BACKOFF_MAX": "2",
    "GENGATE_AMBIGUITY_GRACE": "3",
    "GENGATE_IDEMPOTENCY_RELEASE": "5",
    "GENGATE_SUBMIT_TIMEOUT": "10",
    "GENGATE_REQUEST_TIMEOUT": "10",
}
# Subprocesses run outside the repository, so `python -m gengate` is the installed (editable) package
# found through sys.path, not whatever the current directory happens to hold.
NEUTRAL_CWD = tempfile.gettempdir()


def base_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The outer environment without any GENGATE_* setting (they would leak into the servers), plus
    the fast timings and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENGATE_")}
    env.update(FAST_ENV)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def db_env(database_url: str | None) -> dict[str, str]:
    return {"GENGATE_DATABASE_URL": database_url} if database_url else {}


def cli_run(data_dir: Path | str, *args: str, env: dict[str, str] | None = None, check: bool = True,
            data_dir_last: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m gengate --data-dir D *args` (or with `--data-dir D` after the subcommand's
    arguments when `data_dir_last`). Returns the completed process (text stdout/stderr)."""
    if data_dir_last:
        argv = [sys.executable, "-m", "gengate", *args, "--data-dir", str(data_dir)]
    else:
        argv = [sys.executable, "-m", "gengate", "--data-dir", str(data_dir), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=base_env(env), timeout=timeout, cwd=NEUTRAL_CWD)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv[2:])} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    return proc


def cli(data_dir: Path | str, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    """stdout of `python -m gengate --data-dir D *args`; raises when it exits non-zero (check)."""
    return cli_run(data_dir, *args, env=env, check=check).stdout
