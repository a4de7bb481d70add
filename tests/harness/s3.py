"""A real local S3-compatible server for the S3 storage tests: moto in server mode, started as its own
process on a free port (never an in-process mock), with a fresh bucket per caller."""

from __future__ import annotations

import secrets
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.processes import free_port, wait_http_ok

# Credentials moto accepts; handed to every process that talks to it (never real ones).
S3_ENV = {"AWS_ACCESS_KEY_ID": "gengate-test", "AWS_SECRET_ACCESS_KEY": "gengate-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


class MotoServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "moto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MotoServer:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_http_ok(self.url + "/moto-api/", self.proc, 60, lambda: self.log_path.read_text("utf-8", "replace"))
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def new_bucket(self) -> str:
        """Creates a bucket (path-style PUT; moto needs no signature for it) and returns its name."""
        name = f"gengate-{secrets.token_hex(6)}"
        request = urllib.request.Request(f"{self.url}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200, resp.status
        return name

    def env(self, bucket: str, prefix: str = "media") -> dict[str, str]:
        """What a gengate server needs to store in `bucket` under `prefix`."""
        return {**S3_ENV, "GENGATE_STORAGE_URL": f"s3://{bucket}/{prefix}", "GENGATE_S3_ENDPOINT_URL": self.url}


@contextmanager
def moto_server(workdir: Path) -> Iterator[MotoServer]:
    server = MotoServer(workdir).start()
    try:
        yield server
    finally:
        server.stop()
