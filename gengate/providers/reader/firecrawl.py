"""Firecrawl v1's scrape format (url-analysis.md §2): a strict request schema (an unknown key is a 400
with zod-style `details`) and the `{success, data}` reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gengate.providers.reader.errors import ScrapeInvalid
from gengate.providers.reader.extract import Options
from gengate.providers.reader.page import Page

SUPPORTED_FORMATS = ("markdown", "html", "rawHtml", "links")
BROWSER_FORMATS = ("screenshot", "screenshot@fullPage", "extract", "json", "changeTracking")
# Every v1 key: the ones gengate acts on, and the ones it accepts and leaves alone (waitFor, ...).
KNOWN = frozenset({"url", "formats", "onlyMainContent", "includeTags", "excludeTags", "headers", "waitFor",
                   "timeout", "mobile", "parsePDF", "actions", "location", "skipTlsVerification",
                   "removeBase64Images", "blockAds", "proxy", "storeInCache", "maxAge", "extract", "jsonOptions"})
_OG = {"og:title": "ogTitle", "og:description": "ogDescription", "og:url": "ogUrl", "og:image": "ogImage",
       "og:site_name": "ogSiteName", "og:locale": "ogLocale", "og:locale:alternate": "ogLocaleAlternate",
       "og:audio": "ogAudio", "og:video": "ogVideo", "og:determiner": "ogDeterminer"}


@dataclass
class ScrapeRequest:
    url: str
    formats: list[str] = field(default_factory=lambda: ["markdown"])
    options: Options = field(default_factory=Options)
    headers: dict[str, str] = field(default_factory=dict)
    timeout_ms: int | None = None
    remove_base64_images: bool = True
    parse_pdf: bool = True


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(value), "unknown")


def _wrong_type(path: list[Any], expected: str, value: Any) -> dict[str, Any]:
    received = "undefined" if value is _MISSING else _type_name(value)
    message = "Required" if value is _MISSING else f"Expected {expected}, received {received}"
    return {"code": "invalid_type", "expected": expected, "received": received, "path": path, "message": message}


_MISSING = object()


def _strings(body: dict[str, Any], name: str, problems: list[dict[str, Any]]) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list):
        problems.append(_wrong_type([name], "array", value))
        return []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            problems.append(_wrong_type([name, i], "string", item))
    return [v for v in value if isinstance(v, str)]


def _bool(body: dict[str, Any], name: str, default: bool, problems: list[dict[str, Any]]) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        problems.append(_wrong_type([name], "boolean", value))
        return default
    return value


def parse(body: Any) -> ScrapeRequest:
    if not isinstance(body, dict):
        raise ScrapeInvalid([_wrong_type([], "object", body)])
    problems: list[dict[str, Any]] = []
    unknown = sorted(set(body) - KNOWN)
    if unknown:
        problems.append({"code": "unrecognized_keys", "keys": unknown, "path": [],
                         "message": "Unrecognized key in body -- please review the v1 API documentation for "
                                    "request body changes"})
    url = body.get("url", _MISSING)
    if not isinstance(url, str):
        problems.append(_wrong_type(["url"], "string", url))
        url = ""
    elif not url.strip():
        problems.append({"code": "custom", "path": ["url"], "message": "Invalid URL"})
    formats = _strings(body, "formats", problems) if "formats" in body else ["markdown"]
    for i, fmt in enumerate(formats):
        if fmt in BROWSER_FORMATS:
            problems.append({"code": "custom", "path": ["formats", i],
                             "message": f"The format {fmt!r} needs a browser, which this server does not run"})
        elif fmt not in SUPPORTED_FORMATS:
            problems.append({"code": "invalid_enum_value", "options": [*SUPPORTED_FORMATS, *BROWSER_FORMATS],
                             "received": fmt, "path": ["formats", i],
                             "message": f"Invalid enum value. Expected one of {', '.join(SUPPORTED_FORMATS)}, "
                                        f"received '{fmt}'"})
    only_main = _bool(body, "onlyMainContent", True, problems)
    include = _strings(body, "includeTags", problems)
    exclude = _strings(body, "excludeTags", problems)
    headers = body.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append(_wrong_type(["headers"], "record of strings", headers))
        headers = {}
    timeout = body.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0):
        problems.append({"code": "custom", "path": ["timeout"], "message": "timeout must be a positive integer "
                                                                           "(milliseconds)"})
        timeout = None
    wait_for = body.get("waitFor", 0)
    if isinstance(wait_for, bool) or not isinstance(wait_for, int) or wait_for < 0:
        problems.append({"code": "custom", "path": ["waitFor"], "message": "waitFor must be a non-negative integer"})
    if _bool(body, "mobile", False, problems):
        problems.append({"code": "custom", "path": ["mobile"], "message": "mobile needs a browser, which this "
                                                                         "server does not run"})
    actions = body.get("actions", [])
    if not isinstance(actions, list):
        problems.append(_wrong_type(["actions"], "array", actions))
    elif actions:
        problems.append({"code": "custom", "path": ["actions"], "message": "actions need a browser, which this "
                                                                          "server does not run"})
    for name in ("skipTlsVerification", "blockAds", "storeInCache"):
        _bool(body, name, False, problems)
    remove_b64 = _bool(body, "removeBase64Images", True, problems)
    parse_pdf = _bool(body, "parsePDF", True, problems)
    if problems:
        raise ScrapeInvalid(problems)
    return ScrapeRequest(url=url.strip(), formats=list(dict.fromkeys(formats)) or ["markdown"],
                         options=Options(target=include, remove=exclude, main_only=only_main),
                         headers={str(k): v for k, v in headers.items()}, timeout_ms=timeout,
                         remove_base64_images=remove_b64, parse_pdf=parse_pdf)


def metadata(page: Page) -> dict[str, Any]:
    e = page.extraction
    meta: dict[str, Any] = {}
    for name, value in e.metadata.items():
        meta[name] = value
        if name in _OG:
            meta[_OG[name]] = value
    meta.update({"title": e.title, "description": e.description, "language": e.language or None,
                 "sourceURL": page.source, "url": page.url, "statusCode": page.status})
    if page.status >= 400:
        meta["error"] = f"The target answered HTTP {page.status}"
    return meta


def render(page: Page, req: ScrapeRequest) -> dict[str, Any]:
    e = page.extraction
    data: dict[str, Any] = {}
    for fmt in req.formats:
        if fmt == "markdown":
            data["markdown"] = e.markdown
        elif fmt == "html":
            data["html"] = e.html or page.raw
        elif fmt == "rawHtml":
            data["rawHtml"] = page.raw
        elif fmt == "links":
            data["links"] = [url for _, url in e.links]
    data["metadata"] = metadata(page)
    return {"success": True, "data": data}
