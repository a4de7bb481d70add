"""The operator's web UI at `/admin/`: static HTML, CSS and JavaScript modules from `ui/` (no build
step, no CDN), public like any login page; everything it shows comes from `/admin/api`, behind the
admin token. `/admin` redirects to `/admin/`."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

UI_DIR = Path(__file__).with_name("ui")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
# The page loads nothing from another host. Media previews come from the gateway's own public URL,
# which may be another origin than the one the operator browses (behind a proxy): that origin is allowed
# for images and media, and no other.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: {media}; "
       "media-src 'self' {media}; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'")
# No fingerprinted file names (no build step): the browser revalidates each file (a 304 by ETag).
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "X-Frame-Options": "DENY"}


@lru_cache(maxsize=64)
def _read(name: str) -> tuple[bytes, str] | None:
    path = (UI_DIR / name).resolve()
    if path.parent != UI_DIR.resolve() or path.suffix not in TYPES or not path.is_file():
        return None
    body = path.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def _media_origin(request: Request) -> str:
    ctx = getattr(request.app.state, "ctx", None)
    public = urlsplit(ctx.settings.resolved_public_url) if ctx is not None else None
    return f"{public.scheme}://{public.netloc}" if public and public.scheme in ("http", "https") else ""


def _not_found() -> Response:
    return Response("not found\n", status_code=404, media_type="text/plain", headers=HEADERS)


async def ui_file(request: Request) -> Response:
    name = request.path_params.get("name") or "index.html"
    if "/" in name or name.startswith("."):
        return _not_found()
    found = _read(name)
    if found is None:
        return _not_found()
    body, etag = found
    headers = {**HEADERS, "ETag": etag, "Content-Security-Policy": CSP.format(media=_media_origin(request))}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(b"" if request.method == "HEAD" else body, media_type=TYPES[Path(name).suffix],
                    headers=headers)


async def to_slash(request: Request) -> Response:
    return RedirectResponse("admin/", status_code=308)  # relative: right under a root path too


def ui_routes() -> list[Route]:
    return [Route("/admin", to_slash, methods=["GET", "HEAD"], include_in_schema=False),
            Route("/admin/", ui_file, methods=["GET", "HEAD"], include_in_schema=False),
            Route("/admin/{name}", ui_file, methods=["GET", "HEAD"], include_in_schema=False)]
