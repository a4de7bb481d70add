"""Copy an upstream result (video, image, audio) into gengate's storage, streaming, before it expires.

Upstream result URLs come from operator-configured channels, not from clients, so they are fetched
without the private-address rule that guards client-supplied URLs.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from urllib.parse import urlsplit

import aiohttp

from gengate.storage.base import CHUNK_SIZE, Storage, StoredObject, validate_content_type, validate_key

DEFAULT_MAX_BYTES = 2 * 1024**3
# No total limit: a 2 GB video on a slow link is fine as long as bytes keep arriving.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=15, sock_connect=15, sock_read=60)

# Extension for each media type upstreams return; the reverse gives a type to objects served as
# application/octet-stream (common on object stores) whose URL names the format.
EXTENSIONS: dict[str, str] = {
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/ogg": "ogg",
    "audio/flac": "flac",
}
# Reversed so that the first type listed for an extension wins (wav -> audio/wav).
_TYPE_FOR_EXTENSION: dict[str, str] = {ext: ctype for ctype, ext in reversed(EXTENSIONS.items())} | {
    "jpeg": "image/jpeg"
}
_URL_SUFFIX = re.compile(r"[a-z0-9]{1,8}")
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_RETRYABLE_4XX = frozenset({408, 429})


class RehostError(Exception):
    """The result could not be copied. ``retryable`` says whether trying again later may succeed.

    The message names the upstream host and path (never the query, which often holds a token): it is
    for operators' logs, not for clients, who must never see upstream URLs.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status  # the upstream HTTP status, when there was one


def choose_extension(content_type: str, url: str) -> str:
    """File extension from the media type, else from the URL path's suffix, else ``bin``."""
    ext = EXTENSIONS.get(content_type)
    if ext is not None:
        return ext
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower().removeprefix(".")
    if _URL_SUFFIX.fullmatch(suffix):
        return "jpg" if suffix == "jpeg" else suffix
    return "bin"


def _media_type(header: str | None) -> str:
    media_type = (header or "").split(";", 1)[0].strip().lower()
    try:
        return validate_content_type(media_type)
    except ValueError:
        return ""  # a garbled header is treated like a missing one


def _for_log(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<malformed URL>"
    host = parts.netloc.rpartition("@")[2]  # drop any user:password
    return f"{parts.scheme}://{host}{parts.path}"


async def rehost(
    session: aiohttp.ClientSession,
    url: str,
    storage: Storage,
    key_prefix: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    # Per-phase limits (connect, between reads), which a caller's asyncio.timeout cannot express.
    timeout: aiohttp.ClientTimeout | None = None,  # noqa: ASYNC109
) -> StoredObject:
    """Download ``url`` into ``storage`` as ``<key_prefix>/<random>.<ext>`` and return what was stored.

    Raises :class:`RehostError`: non-retryable for 4xx (except 408 and 429), bodies over ``max_bytes``
    and malformed URLs; retryable for 408, 429, 5xx, network errors, timeouts and local write failures.
    Nothing is stored when it raises.
    """
    key_prefix = validate_key(key_prefix.strip("/"))
    where = _for_log(url)
    try:
        async with session.get(url, timeout=timeout or DEFAULT_TIMEOUT) as response:
            _check_status(response.status, where)
            declared = response.content_length
            if declared is not None and declared > max_bytes:
                raise _too_large(max_bytes, where)
            media_type = _media_type(response.headers.get("Content-Type"))
            ext = choose_extension(media_type, url)
            if media_type in _GENERIC_TYPES:
                media_type = _TYPE_FOR_EXTENSION.get(ext, "application/octet-stream")
            key = f"{key_prefix}/{secrets.token_urlsafe(16)}.{ext}"
            return await storage.put_stream(key, _limited(response, max_bytes, where), media_type)
    except RehostError:
        raise
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
        # A malformed URL stays malformed; trying again cannot help.
        raise RehostError(f"cannot download {where!r}: {exc!r}", retryable=False) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        # asyncio.TimeoutError is TimeoutError since Python 3.11; aiohttp's timeouts derive from it.
        raise RehostError(f"downloading {where} failed: {exc!r}", retryable=True) from exc
    except OSError as exc:
        raise RehostError(f"storing {where} failed: {exc!r}", retryable=True) from exc


def _check_status(status: int, url: str) -> None:
    if 200 <= status < 300:
        return
    retryable = not (400 <= status < 500) or status in _RETRYABLE_4XX
    raise RehostError(f"upstream answered HTTP {status} for {url}", retryable=retryable, status=status)


def _too_large(max_bytes: int, url: str) -> RehostError:
    return RehostError(f"{url} is larger than the {max_bytes}-byte limit", retryable=False)


async def _limited(response: aiohttp.ClientResponse, max_bytes: int, url: str) -> AsyncIterator[bytes]:
    # Counted as it arrives: Content-Length may be absent (chunked) or wrong.
    received = 0
    async for chunk in response.content.iter_chunked(CHUNK_SIZE):
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(max_bytes, url)
        yield chunk
