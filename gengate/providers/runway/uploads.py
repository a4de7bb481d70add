"""Runway's ephemeral uploads (`client.uploads.create_ephemeral(file=...)` in the `runwayml` SDK), kept
in gengate's storage, and the `runway://` URIs they return resolved for the upstream.

The SDK's flow, which gengate answers in Runway's format:
1. `POST /runway/v1/uploads {"filename", "type": "ephemeral"}` (client key) →
   `{"uploadUrl", "fields", "runwayUri"}`.
2. `POST <uploadUrl>` as `multipart/form-data`: `fields` as they were given, then the `file` part; the
   SDK sends no `Authorization` here (Runway's URL is a presigned S3 form), so the signed `fields` are
   the credential, as an S3 POST policy is. 204 on success.
3. The SDK returns `runwayUri` (`runway://gengate/<upload id>`), which the creates accept wherever a
   media URI goes (`promptImage`, `videoUri`, `referenceImages[].uri`, ...), for 24 h, for the key that
   uploaded it only (its storage key holds the key's id: for another key it does not exist).

What goes upstream: the upstream is another service that cannot read gengate's storage, and a
`runway://` URI of gengate means nothing to it. A file of at most 5 MB goes as a data URI (Runway's
own limit for inline media): it needs no inbound network path to gengate and cannot expire while a
task waits in the queue. A larger file goes as a signed gengate media URL (HEAD, correct
Content-Type, no redirect: what Runway's fetcher needs) when gengate's public URL is HTTPS on a domain
name; otherwise Runway could not fetch it, and the create is refused with a 400 saying why.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
import mimetypes
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from gengate.core import errors as e
from gengate.providers.files.upload import Upload, file_chunks
from gengate.providers.runway.errors import ValidationFailed
from gengate.storage.base import Storage
from gengate.storage.signing import UrlSigner

URI_PREFIX = "runway://gengate/"
UPLOAD_TTL = 24 * 3600  # Runway's runway:// URIs are valid 24 h
MAX_INLINE_BYTES = 5 * 1024 * 1024  # Runway's data URI limit
MAX_FILENAME = 255
FORM_PATH = "/runway/v1/uploads/form"
_ID = re.compile(r"^(\d{10,12})-([A-Za-z0-9_-]{22})$")
_POLICY_DOMAIN = "runway-upload\n"  # no storage key holds a newline: a media URL's signature never fits


@dataclass(frozen=True)
class Policy:
    storage_key: str
    expires: int
    filename: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def storage_key(key_id: int, upload_id: str) -> str:
    return f"runway/uploads/{key_id}/{upload_id}"


def start(signer: UrlSigner, key_id: int, body: Any, now: float | None = None) -> dict[str, Any]:
    """Step 1: the reply to `POST /v1/uploads` (`uploadUrl`, signed `fields`, `runwayUri`)."""
    issues: list[dict[str, Any]] = []
    if not isinstance(body, dict):
        raise ValidationFailed([{"code": "invalid_type", "expected": "object", "path": [],
                                 "message": "Expected object"}])
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename.strip() or len(filename) > MAX_FILENAME:
        issues.append({"code": "invalid_type", "path": ["filename"], "expected": "string",
                       "message": f"filename must be a non-empty string of at most {MAX_FILENAME} characters"})
    if body.get("type", "ephemeral") != "ephemeral":
        issues.append({"code": "invalid_value", "path": ["type"], "values": ["ephemeral"],
                       "message": "type must be ephemeral"})
    if issues:
        raise ValidationFailed(issues)
    expires = int((now or time.time()) + UPLOAD_TTL)
    upload_id = f"{expires}-{secrets.token_urlsafe(16)}"
    policy = _b64(json.dumps({"key": storage_key(key_id, upload_id), "exp": expires,
                              "name": str(filename)[:MAX_FILENAME]}).encode())
    return {"uploadUrl": signer.public_url + FORM_PATH,
            "fields": {"policy": policy, "signature": signer.signature(_POLICY_DOMAIN + policy, expires)},
            "runwayUri": URI_PREFIX + upload_id}


def read_policy(signer: UrlSigner, fields: dict[str, str], now: float | None = None) -> Policy:
    """The signed form fields of step 2, or a 403 (forged, altered or expired)."""
    # An InvalidRequest (with S3's 403) so that the form parser, which calls this, passes it on as it is.
    denied = e.InvalidRequest("The upload policy is missing, invalid or expired.", status=403, code="access_denied")
    policy, signature = fields.get("policy", ""), fields.get("signature", "")
    try:
        data = json.loads(_unb64(policy))
        expires, key, name = int(data["exp"]), str(data["key"]), str(data["name"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise denied from None
    expected = signer.signature(_POLICY_DOMAIN + policy, expires).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
        raise denied
    if expires < (now or time.time()):
        raise denied
    return Policy(key, expires, name)


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first bytes: the image, video and audio formats Runway takes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        return "video/quicktime" if brand == b"qt  " else "audio/mp4" if brand.startswith(b"M4A") else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    return None


async def receive(request: Request, storage: Storage, signer: UrlSigner, limit: int) -> None:
    """Step 2: store the form's `file` under the key its signed policy names; write-once."""
    upload = Upload()
    policy: list[Policy] = []

    def check(form: Upload) -> None:  # the fields come before the file: refuse before a byte is stored
        policy.append(read_policy(signer, form.fields))

    chunks = file_chunks(request, upload, limit, f"The file is larger than the maximum of {limit} bytes.", check)
    head = b""
    async for chunk in chunks:
        head += chunk
        if len(head) >= 16:
            break
    if not upload.seen_file or not policy:
        raise e.InvalidRequest("The form must carry the given fields, then a 'file' part.", param="file")
    kind = sniff(head)
    if kind is None:
        guessed = mimetypes.guess_type(policy[0].filename)[0] or ""
        raise e.InvalidRequest(f"The file is not an image, video or audio file Runway takes ({guessed or 'unknown'}).",
                               param="file")
    if await storage.stat(policy[0].storage_key) is not None:
        raise e.InvalidRequest("This upload was already made; start a new one.", param="file")

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for rest in chunks:
            yield rest

    await storage.put_stream(policy[0].storage_key, body(), kind)


class Uploads:
    """Resolves the calling key's `runway://` URIs in a create body into what the upstream can read."""

    def __init__(self, storage: Storage, signer: UrlSigner, key_id: int, url_ttl: int) -> None:
        self.storage, self.signer, self.key_id, self.url_ttl = storage, signer, key_id, url_ttl

    async def resolve(self, value: Any, path: tuple[str | int, ...] = ()) -> Any:
        """`value` (a new structure) with each gengate `runway://` URI replaced; 400 with `issues` for
        one that is unknown, another key's, expired, or too large to reach Runway."""
        issues: list[dict[str, Any]] = []
        out = await self._walk(value, path, issues)
        if issues:
            raise ValidationFailed(issues)
        return out

    async def _walk(self, value: Any, path: tuple[str | int, ...], issues: list[dict[str, Any]]) -> Any:
        if isinstance(value, str) and value.startswith("runway://") and media_field(path):
            return await self._one(value, list(path), issues)
        if isinstance(value, list):
            return [await self._walk(v, (*path, i), issues) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: await self._walk(v, (*path, k), issues) for k, v in value.items()}
        return value

    async def _one(self, uri: str, path: list[str | int], issues: list[dict[str, Any]]) -> str:
        match = _ID.match(uri[len(URI_PREFIX):]) if uri.startswith(URI_PREFIX) else None
        stored = await self.storage.stat(storage_key(self.key_id, uri[len(URI_PREFIX):])) if match else None
        if match is None or stored is None:
            issues.append({"code": "custom", "path": path,
                           "message": "Unknown upload: use a runway:// URI that this gateway's POST /v1/uploads "
                                      "returned to this key"})
            return uri
        if int(match.group(1)) < time.time():
            issues.append({"code": "custom", "path": path, "message": "The upload has expired (24 h); upload again"})
            return uri
        if stored.size <= MAX_INLINE_BYTES:
            data = b"".join([chunk async for chunk in self.storage.open_range(stored.key)])
            return f"data:{stored.content_type};base64,{base64.b64encode(data).decode()}"
        if not reachable(self.signer.public_url):
            issues.append({"code": "too_big", "path": path, "maximum": MAX_INLINE_BYTES,
                           "message": "Uploads above 5 MB reach Runway as a URL, which needs gengate's public URL "
                                      "to be HTTPS on a domain name"})
            return uri
        return self.signer.url_for(stored.key, self.url_ttl)


def media_field(path: tuple[str | int, ...]) -> bool:
    """Whether a value at `path` is a media URI (`uri`, `promptImage`, `...Uri`), not text that
    happens to start with `runway://` (a `promptText`)."""
    name = next((p for p in reversed(path) if isinstance(p, str)), "")
    return name in ("uri", "promptImage") or name.endswith("Uri")


def reachable(public_url: str) -> bool:
    """Whether Runway's fetcher could read a URL under `public_url`: HTTPS on a domain name."""
    parts = urlsplit(public_url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        return parts.scheme == "https" and "." in host and host != "localhost"


class NoUploads:
    """Where no key's uploads can be read (a create through another view, e.g. `/v1/videos`)."""

    async def resolve(self, value: Any, path: tuple[str | int, ...] = ()) -> Any:
        issues = [{"code": "custom", "path": list(p), "message": "runway:// upload URIs are taken on /runway/v1 only"}
                  for p in _uris(value, path)]
        if issues:
            raise ValidationFailed(issues)
        return value


def _uris(value: Any, path: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    if isinstance(value, str):
        return [path] if value.startswith("runway://") and media_field(path) else []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _uris(v, (*path, i))]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _uris(v, (*path, k))]
    return []
