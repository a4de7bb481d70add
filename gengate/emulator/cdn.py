"""Signed, expiring media URLs and the route that serves them, as a provider's CDN would.

A URL names everything needed to render the file (seed, size, duration, fps, type), so any process
can serve it without a store lookup; the HMAC signature keeps clients from asking for other files.

    {public_base}/{provider}/_media/{seed}/{W}x{H}-{duration}s-{fps}fps/{name}.{ext}?Expires=..&Signature=..
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gengate.emulator.media import CONTENT_TYPES, MediaCache, MediaKind, MediaSpec

URL_LIFETIME = 3600.0
MEDIA_PREFIX = "/_media"
_EXTENSIONS: dict[str, MediaKind] = {"mp4": "mp4", "jpeg": "jpeg", "jpg": "jpeg", "png": "png", "mp3": "mp3"}
_GEOMETRY = re.compile(r"^(\d{1,4})x(\d{1,4})-(\d{1,3}(?:\.\d{1,3})?)s-(\d{1,2})fps$")
_SEED = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class MediaSigner:
    def __init__(self, key: bytes, public_base: str, lifetime: float = URL_LIFETIME) -> None:
        self._key = key
        self.public_base = public_base.rstrip("/")
        self.lifetime = lifetime

    def url(self, provider: str, spec: MediaSpec, name: str, now: float | None = None) -> str:
        """An absolute URL for `spec`, valid for `lifetime` seconds from `now`."""
        geometry = f"{spec.width}x{spec.height}-{_seconds(spec.duration)}s-{spec.fps}fps"
        path = f"/{provider}{MEDIA_PREFIX}/{spec.seed}/{geometry}/{quote(name)}"
        expires = int((now if now is not None else time.time()) + self.lifetime)
        return f"{self.public_base}{path}?Expires={expires}&Signature={self._sign(path, expires)}"

    def valid(self, path: str, expires: str, signature: str, now: float) -> bool:
        if not expires.isdigit() or int(expires) < now:
            return False
        return hmac.compare_digest(self._sign(path, int(expires)), signature)

    def _sign(self, path: str, expires: int) -> str:
        return hmac.new(self._key, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def media_route(provider: str, signer: MediaSigner, cache: MediaCache) -> Route:
    async def serve(request: Request) -> Response:
        seed, geometry, name = (request.path_params[k] for k in ("seed", "geometry", "name"))
        path = f"/{provider}{MEDIA_PREFIX}/{seed}/{geometry}/{quote(name)}"
        query = request.query_params
        if not signer.valid(path, query.get("Expires", ""), query.get("Signature", ""), time.time()):
            return PlainTextResponse("Request has expired or its signature does not match", 403)
        spec = _parse(seed, geometry, name)
        if spec is None:
            return PlainTextResponse("Not Found", 404)
        data = await cache.get(spec)
        return _ranged(request, data, CONTENT_TYPES[spec.kind])

    return Route(MEDIA_PREFIX + "/{seed}/{geometry}/{name}", serve, methods=["GET", "HEAD"])


def _parse(seed: str, geometry: str, name: str) -> MediaSpec | None:
    match = _GEOMETRY.match(geometry)
    kind = _EXTENSIONS.get(name.rsplit(".", 1)[-1].lower())
    if match is None or kind is None or not _SEED.match(seed):
        return None
    width, height, duration, fps = int(match[1]), int(match[2]), float(match[3]), int(match[4])
    if kind in ("jpeg", "png", "mp4") and not (width and height):
        return None
    if kind == "mp4" and not (fps and duration):
        return None
    return MediaSpec(kind=kind, seed=seed, width=width, height=height, duration=duration, fps=fps)


def _ranged(request: Request, data: bytes, content_type: str) -> Response:
    """Serve `data` whole or one `Range` of it (a multi-range request gets the whole file)."""
    size = len(data)
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    status, body = 200, data
    header = request.headers.get("range")
    match = _RANGE.match(header.replace(" ", "")) if header else None
    if match and (match[1] or match[2]):
        if match[1]:
            start = int(match[1])
            end = min(int(match[2]), size - 1) if match[2] else size - 1
        else:  # suffix range: the last N bytes
            start, end = max(size - int(match[2]), 0), size - 1
        if start >= size or end < start:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}", **headers})
        status, body = 206, data[start : end + 1]
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        body = b""
    return Response(body, status_code=status, headers=headers, media_type=content_type)


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
