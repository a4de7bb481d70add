"""Jina Reader's format (url-analysis.md §1): the target URL from the raw path, the control headers,
and the text and JSON replies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request

from gengate.core.errors import InvalidRequest
from gengate.providers.reader.extract import Options, token_count
from gengate.providers.reader.page import Page

FORMATS = {"markdown": "Markdown", "html": "HTML", "text": "Text"}
_TRUE = {"true", "1", "yes", "all"}


@dataclass(frozen=True)
class JinaRequest:
    url: str
    fmt: str
    options: Options
    timeout: float | None
    no_cache: bool
    with_links: bool
    with_images: bool
    as_json: bool


def target_url(request: Request, prefix: str = "/r/") -> str:
    """Everything after `/r/` in the raw path, plus the raw query string: the framework neither decodes
    nor normalises it (a target's own `%2F` or `?a=b&c` reaches the target as sent)."""
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1")
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    target = path[len(prefix):] if path.startswith(prefix) else ""
    query = request.scope.get("query_string", b"").decode("latin-1")
    if query:
        target += "?" + query
    if "://" not in target and "%3a" in target[:8].lower():
        target = unquote(target)  # the whole target sent percent-encoded
    for scheme in ("http:/", "https:/"):  # some clients collapse the double slash
        if target.startswith(scheme) and not target.startswith(scheme + "/"):
            target = scheme + "/" + target[len(scheme):]
    if target and "://" not in target:
        target = "https://" + target
    if not target:
        raise InvalidRequest("Invalid URL: put the page's URL after /r/, e.g. /r/https://example.com/")
    return target


def _flag(request: Request, name: str) -> bool:
    return request.headers.get(name, "").strip().lower() in _TRUE


def parse(request: Request, url: str | None = None) -> JinaRequest:
    """The control headers; the target from the raw path, or `url` (the JSON body of `POST /r/`)."""
    if request.headers.get("x-proxy-url") or request.headers.get("x-proxy"):
        raise InvalidRequest("X-Proxy-Url is not supported: the gateway fetches every page itself")
    fmt = (request.headers.get("x-return-format") or request.headers.get("x-respond-with") or "markdown")
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise InvalidRequest(f"X-Return-Format {fmt!r} is not supported; use one of {sorted(FORMATS)}")
    raw_timeout = request.headers.get("x-timeout")
    timeout = None
    if raw_timeout:
        try:
            timeout = float(raw_timeout)
        except ValueError:
            raise InvalidRequest("X-Timeout must be a number of seconds") from None
        if not 0 < timeout < 1e6:
            raise InvalidRequest("X-Timeout must be a positive number of seconds")
    target = [s for s in [request.headers.get("x-target-selector", "").strip()] if s]
    remove = [s for s in [request.headers.get("x-remove-selector", "").strip()] if s]
    accept = request.headers.get("accept", "")
    cache_control = request.headers.get("cache-control", "").lower()
    return JinaRequest(url=url if url is not None else target_url(request), fmt=fmt,
                       options=Options(target=target, remove=remove),
                       timeout=timeout, no_cache=_flag(request, "x-no-cache") or "no-cache" in cache_control,
                       with_links=_flag(request, "x-with-links-summary"),
                       with_images=_flag(request, "x-with-images-summary"),
                       as_json="application/json" in accept.lower())


def _content(page: Page, fmt: str) -> str:
    e = page.extraction
    if fmt == "html":
        return e.html or page.raw
    if fmt == "text":
        return e.text
    return e.markdown


def _images(page: Page) -> list[tuple[str, str]]:
    return [(f"Image {i}" + (f": {alt}" if alt else ""), url) for i, (alt, url) in enumerate(page.extraction.images, 1)]


def render_text(page: Page, req: JinaRequest) -> str:
    e = page.extraction
    lines = [f"Title: {e.title}", "", f"URL Source: {page.url}", ""]
    if e.published:
        lines += [f"Published Time: {e.published}", ""]
    if page.status >= 400:
        lines += [f"Warning: Target URL returned error {page.status}", ""]
    lines += [f"{FORMATS[req.fmt]} Content:", _content(page, req.fmt)]
    text = "\n".join(lines)
    if req.with_images and e.images:
        text += "\n\nImages:\n" + "\n".join(f"- ![{name}]({url})" for name, url in _images(page))
    if req.with_links and e.links:
        text += "\n\nLinks/Buttons:\n" + "\n".join(f"- [{t}]({url})" for t, url in e.links)
    return text + "\n"


def render_json(page: Page, req: JinaRequest) -> dict[str, Any]:
    e = page.extraction
    content = _content(page, req.fmt)
    data: dict[str, Any] = {"title": e.title, "description": e.description, "url": page.url, "content": content}
    if e.published:
        data["publishedTime"] = e.published
    if page.status >= 400:
        data["warning"] = f"Target URL returned error {page.status}"
    if req.with_links:
        data["links"] = {text or url: url for text, url in e.links}
    if req.with_images:
        data["images"] = dict(_images(page))
    data["usage"] = {"tokens": token_count(content)}
    return {"code": 200, "status": 20000, "data": data}
