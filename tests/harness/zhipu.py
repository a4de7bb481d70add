"""Client helpers of Zhipu GLM (`/api/paas/v4`): the official `zhipuai` SDK run in its own venv (it
needs PyJWT<2.9, the project pins a newer one), driven from a subprocess that prints JSON.

The venv is made on demand in a cached location (`$GENGATE_ZHIPUAI_VENV`, default
`~/.cache/gengate/zhipuai-2.1.5`): `python3.11 -m venv` + `pip install` of SDK_PINS.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from harness.processes import Emulator, GengateServer

SDK_PINS = ("zhipuai==2.1.5.20250825", "PyJWT==2.8.0", "sniffio==1.3.1")  # sniffio: undeclared by the SDK
VENV = Path(os.environ.get("GENGATE_ZHIPUAI_VENV", str(Path.home() / ".cache/gengate/zhipuai-2.1.5")))


def sdk_python() -> Path:
    """The venv's python, the venv made first when it is missing."""
    python = VENV / "bin" / "python"
    ready = VENV / ".ready"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers may all get here at once: one makes the venv, the others wait for it.
    with open(VENV.parent / (VENV.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            if VENV.exists():
                shutil.rmtree(VENV)
            base = shutil.which("python3.11") or sys.executable
            subprocess.run([base, "-m", "venv", str(VENV)], check=True, timeout=300)
            subprocess.run([str(python), "-m", "pip", "install", "-q", *SDK_PINS], check=True, timeout=600)
            ready.write_text("ok")
    return python


PRELUDE = """
import json, sys
from zhipuai import ZhipuAI
import zhipuai
base, key = sys.argv[1], sys.argv[2]
client = ZhipuAI(api_key=key, base_url=base, disable_token_cache=True, max_retries=0)
out = {}
def error_of(exc):
    resp = getattr(exc, "response", None)
    return {"class": type(exc).__name__, "status": getattr(resp, "status_code", None),
            "body": resp.json() if resp is not None else None}
"""


def run_sdk(server: GengateServer | str, key: str, code: str, timeout: float = 120) -> dict[str, Any]:
    """Run `code` (using `client`, filling the dict `out`) with the SDK on `server`'s `/api/paas/v4`."""
    base = (server if isinstance(server, str) else server.url) + "/api/paas/v4"
    script = PRELUDE + textwrap.dedent(code) + "\nprint('OUT=' + json.dumps(out))\n"
    proc = subprocess.run([str(sdk_python()), "-c", script, base, key], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("OUT="))
    result: dict[str, Any] = json.loads(line[4:])
    return result


def add_zhipu_channel(server: GengateServer, emulator: Emulator, name: str, *, auth: str = "raw",
                      models: str = "glm-4-flash,glm-4-plus,glm-4.5,cogview-4,cogvideox-3",
                      secret: str | None = None, extra: tuple[str, ...] = ()) -> str:
    """`channels add --provider zhipu --option auth=...` on the standalone emulator; returns its secret S
    (the key sent is `S.S`)."""
    secret = secret or emulator.new_secret()
    server.add_channel("zhipu", emulator.provider_url("zhipu") + "/api/paas/v4", f"{secret}.{secret}", name=name,
                       extra=("--models", models, "--option", f"auth={auth}", *extra))
    return secret
