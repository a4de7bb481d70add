"""Fixtures of the file-service tests: one `gengate serve` (no sandbox needed) with small per-key limits,
and an `openai` SDK client per key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

MiB = 1024 * 1024
LIMITS = {"GENGATE_MAX_FILE_BYTES": str(2 * MiB), "GENGATE_MAX_FILES_PER_KEY": "12",
          "GENGATE_MAX_FILE_STORAGE_PER_KEY": str(3 * MiB), "GENGATE_EXTRACT_TIMEOUT": "20"}


@pytest.fixture(scope="module")
def files_server(make_server: Any) -> Any:
    return make_server(sandbox=False, env=LIMITS)


@pytest.fixture
def sdk() -> Callable[[Any, str], openai.OpenAI]:
    def make(server: Any, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=60)

    return make


@pytest.fixture
def http_post_form() -> Callable[..., tuple[int, Any]]:
    """`http_post_form(url, key, fields, files=[(name, filename, bytes)])` -> (status, JSON body)."""
    import json
    import secrets
    import urllib.error
    import urllib.request

    def post(url: str, key: str, fields: dict[str, str],
             files: list[tuple[str, str, bytes]] | None = None) -> tuple[int, Any]:
        boundary = secrets.token_hex(8)
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in fields.items()]
        for name, filename, data in files or []:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
                         f"\r\nContent-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(url, data=body, method="POST", headers={
            "Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return post
