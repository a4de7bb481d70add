"""The extraction process: `python -m gengate.providers.files.worker PATH KIND MAX_CHARS MEMORY_MB CPU_SECONDS`.

Runs apart from the server, under address-space and CPU limits it sets on itself before importing
any parser, and prints one JSON line: `{"ok": true, "content", "title"}` or `{"ok": false, "reason"}`.
The parent (`extraction.py`) also enforces a wall-clock timeout and kills the process group.
Archives (DOCX, XLSX, PPTX) are checked before parsing: a zip bomb is refused from its directory.
"""

from __future__ import annotations

import json
import resource
import sys
import zipfile
from pathlib import Path

# An Office file whose parts expand beyond this, or far beyond their compressed size, is refused.
MAX_UNZIPPED_BYTES = 256 * 1024 * 1024
MAX_RATIO = 200
MAX_ZIP_MEMBERS = 10_000
MAX_PDF_PAGES = 10_000


class Refused(Exception):
    """The file cannot be extracted; the message is the reason shown to the client."""


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    memory = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _check_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise Refused("the file is not a valid Office document (not a ZIP archive)") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise Refused(f"the document holds more than {MAX_ZIP_MEMBERS} parts")
    total = sum(m.file_size for m in members)
    if total > MAX_UNZIPPED_BYTES:
        raise Refused(f"the document expands to {total} bytes, more than {MAX_UNZIPPED_BYTES}")
    for m in members:
        if m.file_size > 1024 * 1024 and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise Refused(f"the document part {m.filename!r} expands {m.file_size // max(m.compress_size, 1)}"
                          " times: refused as a possible zip bomb")


def _decode(raw: bytes, truncated: bool = False) -> str:
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Refused("the file is binary, not text")
    for encoding in ("utf-8-sig", "utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig",):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError as exc:
            if truncated and encoding == "utf-8-sig" and exc.start >= len(raw) - 3:
                return raw[:exc.start].decode(encoding)  # the read stopped inside a character
    from charset_normalizer import from_bytes

    best = from_bytes(raw).best()
    if best is None:
        raise Refused("the file is not text in any known encoding")
    return str(best)


def _pdf(path: Path, max_chars: int) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise Refused("the PDF is encrypted")
        pages = len(reader.pages)
        if pages > MAX_PDF_PAGES:
            raise Refused(f"the PDF has {pages} pages, more than {MAX_PDF_PAGES}")
        parts: list[str] = []
        size = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            parts.append(text)
            size += len(text)
            if size >= max_chars:
                break
        meta = reader.metadata
        title = str(meta.title) if meta is not None and meta.title else ""
    except PyPdfError as exc:
        raise Refused(f"the PDF cannot be read: {exc}") from None
    return "\n\n".join(p.strip() for p in parts if p.strip()), title


def _markitdown(path: Path, extension: str) -> tuple[str, str]:
    from markitdown import MarkItDown

    try:
        result = MarkItDown(enable_plugins=False).convert_local(str(path), file_extension=extension)
    except Exception as exc:
        raise Refused(f"the {extension.lstrip('.').upper()} file cannot be parsed: {type(exc).__name__}") from None
    return result.markdown.strip(), result.title or ""


def _docx(path: Path) -> tuple[str, str]:
    # markitdown's own DOCX path first rewrites the document with BeautifulSoup, which (with the lxml
    # installed here) drops the `w:` prefixes and loses the body; mammoth reads the file as it is.
    import io

    import mammoth
    from markitdown import MarkItDown

    try:
        with path.open("rb") as f:
            html = mammoth.convert_to_html(f).value
        result = MarkItDown(enable_plugins=False).convert_stream(io.BytesIO(html.encode()), file_extension=".html")
    except Exception as exc:
        raise Refused(f"the DOCX file cannot be parsed: {type(exc).__name__}") from None
    return result.markdown.strip(), result.title or ""


def extract(path: Path, kind: str, max_chars: int) -> tuple[str, str]:
    """The text and title of the file; `kind` is its extension (`pdf`, `docx`, `txt`...)."""
    if kind == "pdf":
        return _pdf(path, max_chars)
    if kind in ("docx", "xlsx", "pptx"):
        _check_zip(path)
        if kind == "docx":
            return _docx(path)
        return _markitdown(path, "." + kind)
    if kind in ("html", "htm"):
        return _markitdown(path, ".html")
    limit = max_chars * 4 + 4
    with path.open("rb") as f:
        raw = f.read(limit)
    return _decode(raw, truncated=len(raw) == limit), ""


def main(argv: list[str]) -> int:
    path, kind, max_chars, memory_mb, cpu_seconds = argv[1], argv[2], int(argv[3]), int(argv[4]), int(argv[5])
    _limit(memory_mb, cpu_seconds)
    try:
        content, title = extract(Path(path), kind, max_chars)
        reply = {"ok": True, "content": content[:max_chars], "title": title}
    except Refused as exc:
        reply = {"ok": False, "reason": str(exc)}
    except MemoryError:
        reply = {"ok": False, "reason": "extraction needed more memory than allowed"}
    except RecursionError:
        reply = {"ok": False, "reason": "the file nests too deeply to parse"}
    sys.stdout.write(json.dumps(reply))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
