"""Real, playable media for emulated results: MP4 (H.264), JPEG, PNG and MP3.

Content is a pure function of the spec (seed, size, duration, fps), so every process renders the
same bytes for the same URL. Files are kept small (low frame rate, high CRF) so that rendering one
takes well under 0.3 s; a size-capped LRU keeps recent ones.
"""

from __future__ import annotations

import array
import asyncio
import hashlib
import io
import math
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av
from PIL import Image

MediaKind = Literal["mp4", "jpeg", "png", "mp3"]
CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "mp3": "audio/mpeg",
}
_AUDIO_RATE = 44_100
_MP3_FRAME = 1152  # samples per MPEG-1 Layer III frame


# Aspect ratios the video and image providers offer, as (wide, tall).
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "16:9": (16, 9),
    "9:16": (9, 16),
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "21:9": (21, 9),
    "9:21": (9, 21),
    "3:2": (3, 2),
    "2:3": (2, 3),
}


def frame_size(aspect_ratio: object, short_side: int = 360, default: str = "16:9") -> tuple[int, int]:
    """Pixels for `aspect_ratio` ("16:9"; unknown ones get `default`), kept small: the short side
    is `short_side`, both sides even (H.264 needs it)."""
    wide, tall = ASPECT_RATIOS.get(str(aspect_ratio), ASPECT_RATIOS[default])
    if wide >= tall:
        return _nearest_even(short_side * wide / tall), _nearest_even(short_side)
    return _nearest_even(short_side), _nearest_even(short_side * tall / wide)


def whole_frames(seconds: float, fps: int) -> float:
    """`seconds` rounded to whole frames (at least one), an int when whole, so that a file and
    the reply that describes it agree exactly."""
    exact = max(round(seconds * fps), 1) / fps
    return int(exact) if exact.is_integer() else exact


def _nearest_even(value: float) -> int:
    return max(2, round(value / 2) * 2)


@dataclass(frozen=True, slots=True)
class MediaSpec:
    kind: MediaKind
    seed: str
    width: int = 0
    height: int = 0
    duration: float = 0.0  # seconds (mp4, mp3)
    fps: int = 0  # mp4

    def number(self) -> int:
        return int.from_bytes(hashlib.sha256(self.seed.encode()).digest()[:8], "big")


def render(spec: MediaSpec) -> bytes:
    if spec.kind == "mp4":
        return render_mp4(spec)
    if spec.kind == "mp3":
        return render_mp3(spec)
    return render_image(spec)


def render_image(spec: MediaSpec) -> bytes:
    n = spec.number()
    size = (spec.width, spec.height)
    ramp = Image.linear_gradient("L")
    red = ramp.rotate(n % 360).resize(size)
    green = ramp.transpose(Image.Transpose.ROTATE_90).resize(size)
    blue = Image.new("L", size, (n >> 12) % 256)
    picture = Image.merge("RGB", (red, green, blue))
    out = io.BytesIO()
    if spec.kind == "png":
        picture.save(out, format="PNG", compress_level=1)
    else:
        picture.save(out, format="JPEG", quality=70)
    return out.getvalue()


def render_mp4(spec: MediaSpec) -> bytes:
    """H.264 in MP4 (ftyp, mdat, moov), yuv420p: a diagonal luma ramp that moves each frame over a
    chroma tint picked by the seed. Exactly round(duration * fps) frames at `fps`."""
    width, height, fps = _even(spec.width), _even(spec.height), spec.fps
    n = spec.number()
    frames = max(round(spec.duration * fps), 1)
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "38"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        ramp = bytes(i & 255 for i in range(frames * 6 + width + height + 256))
        start = n % 256
        for index in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            luma = frame.planes[0]
            pad = b"\0" * (luma.line_size - width)
            offset = start + index * 6
            luma.update(b"".join(ramp[offset + y : offset + y + width] + pad for y in range(height)))
            for plane, value in (
                (frame.planes[1], (n >> 8) + index * 3),
                (frame.planes[2], (n >> 16) - index),
            ):
                plane.update(bytes([value & 255]) * (plane.line_size * (height // 2)))
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def render_mp3(spec: MediaSpec) -> bytes:
    """MPEG-1 Layer III, mono 44.1 kHz: a sine tone whose pitch comes from the seed."""
    pitch = 220 + spec.number() % 440
    second = array.array(
        "h", (int(6000 * math.sin(2 * math.pi * pitch * i / _AUDIO_RATE)) for i in range(_AUDIO_RATE))
    ).tobytes()
    total = max(round(spec.duration * _AUDIO_RATE), _MP3_FRAME)
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=_AUDIO_RATE, layout="mono")
        stream.bit_rate = 64_000
        done = 0
        while done < total:
            count = min(_MP3_FRAME, total - done)
            frame = av.AudioFrame(format="s16p", layout="mono", samples=count)
            frame.sample_rate = _AUDIO_RATE
            at = (done % _AUDIO_RATE) * 2
            chunk = (second[at:] + second[:at])[: count * 2]
            frame.planes[0].update(chunk + b"\0" * (frame.planes[0].buffer_size - len(chunk)))
            frame.pts = done
            container.mux(stream.encode(frame))
            done += count
        container.mux(stream.encode(None))
    return out.getvalue()


def _even(value: int) -> int:
    # yuv420p halves both dimensions for chroma, so H.264 needs them even.
    return max(value + (value & 1), 2)


class MediaCache:
    """Rendered files, least recently used dropped first once `max_bytes` is exceeded. Concurrent
    requests for the same file share one render, which runs in a thread off the event loop."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._files: OrderedDict[MediaSpec, bytes] = OrderedDict()
        self._size = 0
        self._pending: dict[MediaSpec, asyncio.Future[bytes]] = {}

    async def get(self, spec: MediaSpec) -> bytes:
        data = self._files.get(spec)
        if data is not None:
            self._files.move_to_end(spec)
            return data
        pending = self._pending.get(spec)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[spec] = future
        try:
            data = await asyncio.to_thread(render, spec)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved: there may be nobody else waiting
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            self._pending.pop(spec, None)
        future.set_result(data)
        self._keep(spec, data)
        return data

    def _keep(self, spec: MediaSpec, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        self._files[spec] = data
        self._size += len(data)
        while self._size > self.max_bytes:
            _, dropped = self._files.popitem(last=False)
            self._size -= len(dropped)
