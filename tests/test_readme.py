"""The README's tour runs as written against `gengate serve --sandbox` (only the base URL, the CLI's
path and its data dir are substituted), so the commands a new user copies really work."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parent.parent


def _blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    tour = text[text.index("## A tour"):text.index("## Commands")]
    return re.findall(r"```sh\n(.*?)```", tour, re.S)[:2]  # the key holder's tour, then the operator's


def test_the_tour_has_both_parts() -> None:
    first, second = _blocks()
    assert "BASE=" in first and "KEY=" in first and "jq" in first
    assert "admin token" in second and "/metrics" in second


def test_the_readme_tour_runs(make_server, tmp_path: Path) -> None:
    if shutil.which("jq") is None or shutil.which("curl") is None:
        if os.environ.get("GENGATE_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail("the tour needs curl and jq on PATH (.ci/run installs them)")
        pytest.skip("the tour needs curl and jq on PATH")
    server = make_server()
    cli = f"{Path(sys.executable).parent / 'gengate'} --data-dir {server.data_dir}"
    script = "set -euo pipefail\n" + "\n".join(_blocks())
    script = script.replace("http://127.0.0.1:8000", server.url).replace(".venv/bin/gengate", cli)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")  # the file the tour uploads
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "gpt-4o-mini" in out and "\n1536\n" in out and '"conflict"' in out, out[-3000:]
    assert (tmp_path / "boat.mp4").read_bytes()[4:8] == b"ftyp"
    assert (tmp_path / "lighthouse.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "\n200\n" in out and "gengate_http_requests_total{" in out, out[-3000:]
