"""Text extraction for `purpose=file-extract`, off the event loop and bounded in time and memory.

Each file is parsed by a fresh `worker.py` process (address-space and CPU limits, a wall-clock
timeout, its whole process group killed past it), at most `concurrency` at once per server process:
a zip bomb, a 5,000-page PDF or a parser bug costs one process, never the server. The worker's
reply is read with a cap, so a runaway parser cannot fill the server's memory either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gengate.files")

# Extension -> (kind the worker parses, the MIME type Kimi reports as `file_type`).
TYPES: dict[str, tuple[str, str]] = {
    "pdf": ("pdf", "application/pdf"),
    "docx": ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "xlsx": ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "pptx": ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    "html": ("html", "text/html"),
    "htm": ("html", "text/html"),
    "md": ("text", "text/markdown"),
    "markdown": ("text", "text/markdown"),
    "csv": ("text", "text/csv"),
    "json": ("text", "application/json"),
    "txt": ("text", "text/plain"),
    "log": ("text", "text/plain"),
    "xml": ("text", "application/xml"),
    "yaml": ("text", "application/yaml"),
    "yml": ("text", "application/yaml"),
    "py": ("text", "text/x-python"),
    "js": ("text", "text/javascript"),
    "ts": ("text", "text/plain"),
    "java": ("text", "text/plain"),
    "c": ("text", "text/plain"),
    "cpp": ("text", "text/plain"),
    "go": ("text", "text/plain"),
    "rs": ("text", "text/plain"),
    "sh": ("text", "text/plain"),
    "sql": ("text", "text/plain"),
}
_BY_MIME = {mime.split(";")[0]: kind for kind, mime in TYPES.values()} | {"text/plain": "text"}


def file_type(filename: str, declared: str | None) -> tuple[str | None, str]:
    """(the worker's kind or None when unsupported, the MIME type) from the name, else the part's type."""
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    if extension in TYPES:
        return TYPES[extension]
    mime = (declared or "").split(";")[0].strip().lower() or "application/octet-stream"
    kind = _BY_MIME.get(mime) or ("text" if mime.startswith("text/") else None)
    return kind, mime


@dataclass(frozen=True)
class Extracted:
    ok: bool
    content: str = ""
    title: str = ""
    reason: str | None = None  # why the file could not be parsed (shown as `status_details`)


class Extractor:
    def __init__(self, *, timeout: float, memory_mb: int, max_chars: int, concurrency: int) -> None:
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_chars = max_chars
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def extract(self, path: Path, kind: str) -> Extracted:
        async with self._slots:
            return await self._run(path, kind)

    async def _run(self, path: Path, kind: str) -> Extracted:
        argv = [sys.executable, "-m", "gengate.providers.files.worker", str(path), kind, str(self.max_chars),
                str(self.memory_mb), str(int(self.timeout) + 1)]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        assert proc.stdout is not None and proc.stderr is not None
        # JSON escapes may grow the text six-fold; anything beyond that is not a reply of ours.
        cap = self.max_chars * 6 + 65536
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await asyncio.gather(_read_capped(proc.stdout, cap), _read_capped(proc.stderr, 65536))
                await proc.wait()
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            return Extracted(False, reason=f"extraction took longer than {self.timeout:g} s")
        finally:
            if proc.returncode is None:
                _kill(proc)
                with contextlib.suppress(Exception):
                    await proc.wait()
        if len(out) > cap:
            return Extracted(False, reason="the extracted text is too large")
        try:
            reply = json.loads(out)
        except ValueError:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            log.warning("extraction of a %s file failed: %s", kind, tail[0][:300])
            if proc.returncode is not None and proc.returncode < 0:
                return Extracted(False, reason="the file needed more time or memory than allowed to parse")
            return Extracted(False, reason=f"the {kind.upper()} file could not be parsed")
        if not reply.get("ok"):
            return Extracted(False, reason=str(reply.get("reason") or "the file could not be parsed"))
        return Extracted(True, content=str(reply["content"]), title=str(reply.get("title") or ""))


async def _read_capped(stream: asyncio.StreamReader, cap: int) -> bytes:
    """Everything up to EOF, or the first `cap + 1` bytes (then the caller refuses the reply)."""
    data = bytearray()
    while len(data) <= cap:
        chunk = await stream.read(65536)
        if not chunk:
            break
        data += chunk
    return bytes(data[:cap + 1])


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the worker's own session: it and anything it started
