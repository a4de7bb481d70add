"""Reading a `multipart/form-data` upload as a stream: form fields are kept (small), the `file`
part's bytes are handed on chunk by chunk as they arrive, so an upload of any size needs a bounded
amount of memory on its way to storage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gengate.core.errors import BodyTooLarge, ClientGone, InvalidRequest

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32


@dataclass
class Upload:
    """What the form held besides the file's bytes, filled in while the stream is read."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    seen_file: bool = False


class _Collector:
    """The parser's callbacks: headers and field values into `upload`, file bytes into `pending`."""

    def __init__(self, upload: Upload, on_file: Callable[[Upload], None]) -> None:
        self.upload = upload
        self.on_file = on_file
        self.pending: list[bytes] = []
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._name: str | None = None
        self._in_file = False
        self._value = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self._headers, self._name, self._in_file, self._value = {}, None, False, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = self._header_value.decode("utf-8", "replace")
        self._header_field, self._header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition", ""))
        name = params.get(b"name")
        self._name = name.decode("utf-8", "replace") if name is not None else None
        if self._name == "file":
            if self.upload.seen_file:
                raise InvalidRequest("only one file may be uploaded per request", param="file")
            filename = params.get(b"filename")
            self.upload.filename = filename.decode("utf-8", "replace") if filename is not None else None
            self.upload.content_type = self._headers.get("content-type")
            self.upload.seen_file = True
            self._in_file = True
            self.on_file(self.upload)  # e.g. refuse a bad purpose before any byte is stored

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.pending.append(bytes(data[start:end]))
            return
        self._value += data[start:end]
        if len(self._value) > MAX_FIELD_BYTES:
            raise InvalidRequest(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if self._in_file or self._name is None:
            return
        if len(self.upload.fields) >= MAX_FIELDS:
            raise InvalidRequest(f"more than {MAX_FIELDS} form fields")
        try:
            self.upload.fields[self._name] = self._value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"form field {self._name!r} is not valid UTF-8", param=self._name) from None


def boundary_of(request: Request) -> bytes:
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidRequest("the upload must be multipart/form-data with a 'file' and a 'purpose' field")
    return boundary


async def file_chunks(request: Request, upload: Upload, limit: int, too_large: str,
                      on_file: Callable[[Upload], None]) -> AsyncIterator[bytes]:
    """Parse the whole body; yield the `file` part's bytes. Raises BodyTooLarge (with `too_large`)
    once the file passes `limit` bytes, InvalidRequest for a malformed form."""
    collector = _Collector(upload, on_file)
    parser = MultipartParser(boundary_of(request), collector.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except InvalidRequest:
                raise
            except Exception:  # the parser's own errors: a malformed form is the client's
                raise InvalidRequest("the multipart body is malformed") from None
            for data in collector.pending:
                upload.size += len(data)
                if upload.size > limit:
                    raise BodyTooLarge(too_large, param="file")
                yield data
            collector.pending.clear()
        parser.finalize()
    except ClientDisconnect:
        raise ClientGone("the client closed the connection during the upload") from None
