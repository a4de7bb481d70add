"""Fetching a page for URL analysis: through the SSRF guard (checked addresses, checked redirects,
capped body and time), PDFs to text in the file service's bounded extraction process, HTML to an
`Extraction`, and a short-lived cache of the results, bounded in entries and bytes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from gengate.core.errors import FetchFailed, InvalidRequest
from gengate.net.ssrf import GuardedClient
from gengate.providers.files.extraction import Extractor
from gengate.providers.reader.extract import Extraction, Options, extract_html, extract_text
from gengate.web.context import AppContext

USER_AGENT = "Mozilla/5.0 (compatible; gengate-reader/1.0)"
CACHE_ENTRIES = 256
CACHE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Page:
    source: str  # the URL as asked
    url: str  # the final URL, after redirects
    status: int  # the target's HTTP status
    content_type: str
    raw: str  # the body as text ("" for a PDF)
    extraction: Extraction

    def size(self) -> int:
        e = self.extraction
        return len(self.raw) + len(e.markdown) + len(e.html) + len(e.text) + 1024


class PageCache:
    def __init__(self, ttl: float, entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self.ttl = ttl
        self.entries = entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[object, ...], tuple[float, Page]] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[object, ...]) -> Page | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: tuple[object, ...], page: Page) -> None:
        if self.ttl <= 0 or page.size() > self.max_bytes // 4:
            return
        if key in self._items:
            self._drop(key)
        self._items[key] = (time.monotonic() + self.ttl, page)
        self._bytes += page.size()
        while len(self._items) > self.entries or self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def _drop(self, key: tuple[object, ...]) -> None:
        _, page = self._items.pop(key)
        self._bytes -= page.size()


def _as_sent(url: str) -> str | URL:
    """The target exactly as the client wrote it (`%2F` in a query stays `%2F`) when it is plain
    printable ASCII; anything else goes to the guard as text, to be checked and quoted there."""
    if url.isascii() and all(0x20 < ord(ch) < 0x7F for ch in url):
        try:
            return URL(url, encoded=True)
        except ValueError:
            return url
    return url


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip("\"' ")
    return None


def _decode(body: bytes, content_type: str) -> str:
    charset = _charset(content_type)
    if charset:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("utf-8", "replace")


class Reader:
    def __init__(self, ctx: AppContext) -> None:
        s = ctx.settings
        self.client = GuardedClient(ctx.url_policy)
        self.cache = PageCache(s.reader_cache_seconds)
        self.max_timeout = s.reader_max_timeout
        self.pdf = Extractor(timeout=s.extract_timeout, memory_mb=s.extract_memory_mb, max_chars=s.extract_max_chars,
                             concurrency=s.extract_concurrency)
        self.tmp_dir = Path(s.data_dir) / "tmp" / "reader"

    def clamp(self, seconds: float | None) -> float:
        if seconds is None or seconds <= 0:
            return self.max_timeout
        return max(1.0, min(seconds, self.max_timeout))

    async def read(self, url: str, options: Options, *, seconds: float, headers: dict[str, str] | None = None,
                   use_cache: bool = True, cache_scope: str = "") -> Page:
        key = (cache_scope, url, tuple(options.target), tuple(options.remove), options.main_only,
               tuple(sorted((headers or {}).items())))
        if use_cache and (cached := self.cache.get(key)) is not None:
            return cached
        sent = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9,*/*;q=0.8",
                **(headers or {})}
        response = await self.client.request("GET", _as_sent(url), headers=sent, timeout=seconds)  # type: ignore[arg-type]
        content_type = response.headers.get("Content-Type", "")
        if "pdf" in content_type.lower() or response.body[:5] == b"%PDF-":
            extraction, raw = await self._pdf(response.body), ""
            content_type = content_type or "application/pdf"
        else:
            raw = _decode(response.body, content_type)
            looks_html = "html" in content_type.lower() or raw.lstrip()[:200].lower().startswith(("<!doctype", "<html"))
            if looks_html or not content_type:
                try:
                    extraction = await asyncio.to_thread(extract_html, raw, response.url, options)
                except ValueError as exc:
                    raise InvalidRequest(str(exc), param="selector") from None
            else:
                extraction = extract_text(raw)
        page = Page(source=url, url=response.url, status=response.status, content_type=content_type, raw=raw,
                    extraction=extraction)
        self.cache.put(key, page)
        return page

    async def _pdf(self, body: bytes) -> Extraction:
        await asyncio.to_thread(self.tmp_dir.mkdir, parents=True, exist_ok=True)
        fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=self.tmp_dir, suffix=".pdf")
        try:
            with contextlib.closing(await asyncio.to_thread(os.fdopen, fd, "wb")) as f:
                await asyncio.to_thread(f.write, body)
            result = await self.pdf.extract(Path(name), "pdf")
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
        if not result.ok:
            raise FetchFailed(f"the PDF at the URL could not be read: {result.reason}")
        return extract_text(result.content, result.title)
