"""Renaming one text field of a multipart/form-data body as bytes (an image edit's `model` under a
channel's `--model-map`): every other part, files included, is forwarded as the client sent it, under
the same boundary, so the request's Content-Type stays valid."""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r'boundary="?([^";,]+)"?', re.I)
_NAME = re.compile(rb'^content-disposition:[^\r\n]*?;\s*name="([^"]*)"', re.I | re.M)


def boundary_of(content_type: str) -> bytes | None:
    found = _BOUNDARY.search(content_type)
    return found.group(1).strip().encode("latin-1") if found else None


def with_field(raw: bytes, boundary: bytes, name: str, value: str) -> bytes:
    """`raw` with the text field `name` set to `value` (replaced where present, else added last)."""
    delimiter = b"--" + boundary
    parts = raw.split(delimiter)
    if len(parts) < 3:  # no part at all: nothing this module can rename
        return raw
    wanted = name.encode()
    for i in range(1, len(parts) - 1):  # parts[0] is the preamble, parts[-1] the closing "--"
        head, sep, _ = parts[i].partition(b"\r\n\r\n")
        found = _NAME.search(head)
        if sep and found and found.group(1) == wanted:
            parts[i] = head + sep + value.encode() + b"\r\n"
            return delimiter.join(parts)
    added = (b'\r\nContent-Disposition: form-data; name="' + wanted + b'"\r\n\r\n' + value.encode() + b"\r\n")
    parts.insert(len(parts) - 1, added)
    return delimiter.join(parts)
