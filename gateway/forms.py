"""Reading a caller's form (multipart/form-data or url-encoded) as a stream, within limits.

Litestar's own form parser buffers every part before a handler sees it, names no field
when a limit is reached, and raises `UnicodeDecodeError` (a 500) on a text part that is
not UTF-8. Here the body is parsed as it arrives (`multipart.PushMultipartParser`), and
each limit stops the read at once with an error that names the field:

- a file part larger than `max_file_bytes` (`[security] max_upload_bytes`): 413;
- a text part larger than `max_text_bytes`: 413;
- more than `max_parts` parts: 413, naming the first part over;
- a filename longer than `max_filename` characters: 400;
- a text part that is not valid in its charset (UTF-8 unless it says otherwise): 400.

The whole body stays within Litestar's `request_max_body_size` (`[security]
max_request_bytes`), which `Request.stream()` enforces. A file part's SHA-256 is
computed on a worker thread (`sha256_of`), and its bytes stay in the buffer they arrived in.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from gateway.errors import BadRequest, PayloadTooLarge
from gateway.schema import MAX_FORM_FIELDS
from gateway.settings import SecuritySettings

MULTIPART = "multipart/form-data"
URL_ENCODED = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_PART_HEADER_BYTES = 16 * 1024  # one header line of a part (its name and filename live here)
_NAME_IN_HEADER = re.compile(rb'(?<![A-Za-z*])name="([^"]{1,64})"')


@dataclass(frozen=True, kw_only=True)
class FormLimits:
    max_parts: int
    max_text_bytes: int
    max_file_bytes: int
    max_filename: int = 255


@dataclass(kw_only=True)
class FilePart:
    """An uploaded file, read whole (at most `max_file_bytes`) and not yet stored."""

    name: str
    filename: str | None
    content_type: str | None
    # The bytes as received: a bytearray, never copied into one `bytes` on the event loop (a
    # 48 MiB copy there is ~10^4 page faults in one step; the stores and the probe take either).
    data: bytes | bytearray = b""
    sha256: str = ""  # filled in off the loop by whoever needs it (`sha256_of`)


FormItem = tuple[str, "str | FilePart"]

MAX_FILES_FORM_PARTS = 16  # `POST /v1/files`: the file, its purpose, and a few fields the SDKs add
MAX_PURPOSE = 64


def create_form_limits(security: SecuritySettings) -> FormLimits:
    """`POST /v1/videos`: a text field may carry a data: URL as large as an upload."""
    return FormLimits(max_parts=MAX_FORM_FIELDS, max_text_bytes=data_url_bytes(security.max_upload_bytes), max_file_bytes=security.max_upload_bytes)


def files_form_limits(security: SecuritySettings) -> FormLimits:
    """`POST /v1/files`: one file and short text fields."""
    return FormLimits(max_parts=MAX_FILES_FORM_PARTS, max_text_bytes=1024, max_file_bytes=security.max_upload_bytes)


def data_url_bytes(upload_bytes: int) -> int:
    """The length of a base64 data: URL holding `upload_bytes`, with room for its header."""
    return 4 * -(-upload_bytes // 3) + 1024


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """`Application/JSON; charset=UTF-8` -> ("application/json", {"charset": "UTF-8"}).

    Media types are case-insensitive (RFC 9110 8.3.1); parameter values are kept as sent."""
    if not header:
        return "", {}
    kind, *rest = header.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, sep, value = item.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


async def read_form(stream: AsyncIterator[bytes], content_type: str, limits: FormLimits) -> list[FormItem]:
    """The form's fields in the order sent: text values as `str`, files as `FilePart`."""
    kind, params = media_type(content_type)
    if kind == URL_ENCODED:
        return await _read_url_encoded(stream, limits)
    if kind != MULTIPART:
        raise BadRequest(f"Content-Type {_short(content_type)!r} is not a form: send {MULTIPART}", param="Content-Type")
    boundary = params.get("boundary")
    if not boundary:
        raise BadRequest("multipart/form-data needs a boundary parameter in its Content-Type", param="Content-Type")
    return await _read_multipart(stream, boundary, limits)


async def _read_multipart(stream: AsyncIterator[bytes], boundary: str, limits: FormLimits) -> list[FormItem]:
    items: list[FormItem] = []
    try:
        parser = PushMultipartParser(boundary, max_header_size=MAX_PART_HEADER_BYTES, max_header_count=8)
    except ParserError:
        raise BadRequest("multipart/form-data has an invalid boundary", param="Content-Type") from None
    part: _Part | None = None
    tail = chunk = b""  # the latest raw bytes, to name the part whose headers run over the limit
    try:
        async for chunk in stream:
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    if len(items) >= limits.max_parts:
                        raise PayloadTooLarge(f"The form has more than {limits.max_parts} parts; {_short(event.name)!r} is one too many", param=event.name)
                    part = _Part.start(event, limits)
                elif event and part is not None:
                    part.add(event, limits)
                elif event is None and part is not None:
                    items.append((part.name, part.finish()))
                    part = None
            if parser.closed:
                break
            tail = chunk[-MAX_PART_HEADER_BYTES:]
        parser.close()  # the stream ended: an unfinished form is an error
    except ParserLimitReached:
        field_name = _long_header_name(tail + chunk)
        raise PayloadTooLarge(
            f"A multipart part's headers exceed {MAX_PART_HEADER_BYTES} bytes (a field name or filename that long is refused)",
            param=field_name,
        ) from None
    except ParserError as exc:
        raise BadRequest(f"The body is not valid multipart/form-data: {exc}", param=None) from None
    return items


def _long_header_name(raw: bytes) -> str | None:
    """The field name in the first header line over the limit (it holds name and filename)."""
    for line in raw.split(b"\n"):
        if len(line) > MAX_PART_HEADER_BYTES:
            found = _NAME_IN_HEADER.search(line)
            return found.group(1).decode(errors="replace") if found else None
    return None


@dataclass
class _Part:
    name: str
    charset: str | None
    file: FilePart | None
    text: bytearray = field(default_factory=bytearray)
    size: int = 0

    @classmethod
    def start(cls, segment: MultipartSegment, limits: FormLimits) -> _Part:
        name = segment.name
        if segment.filename is None:
            return cls(name=name, charset=segment.charset, file=None)
        filename = segment.filename
        if len(filename) > limits.max_filename:
            raise BadRequest(f"{_short(name)}: the filename is {len(filename)} characters long; the limit is {limits.max_filename}", param=name)
        upload = FilePart(name=name, filename=filename or None, content_type=segment.content_type)
        return cls(name=name, charset=None, file=upload)

    def add(self, data: bytes | bytearray, limits: FormLimits) -> None:
        self.size += len(data)
        if self.file is not None:
            if self.size > limits.max_file_bytes:
                raise PayloadTooLarge(f"{_short(self.name)} is larger than the {limits.max_file_bytes}-byte upload limit", param=self.name)
        elif self.size > limits.max_text_bytes:
            raise PayloadTooLarge(f"Form field {_short(self.name)!r} is longer than {limits.max_text_bytes} bytes", param=self.name)
        self.text += data

    def finish(self) -> str | FilePart:
        if self.file is not None:
            self.file.data = self.text
            return self.file
        return decode_text(self.name, bytes(self.text), self.charset)


async def sha256_of(part: FilePart) -> str:
    """The part's SHA-256, computed on a worker thread (hashlib releases the GIL, so the loop
    runs on meanwhile); kept on the part."""
    if not part.sha256:
        part.sha256 = await asyncio.to_thread(lambda: hashlib.sha256(part.data).hexdigest())
    return part.sha256


def decode_text(name: str, raw: bytes, charset: str | None = None) -> str:
    """A text field's value; 400 naming it when the bytes are not valid in their charset."""
    try:
        return raw.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise BadRequest(f"Form field {_short(name)!r} is not valid {charset or 'UTF-8'} text", param=name) from None


async def _read_url_encoded(stream: AsyncIterator[bytes], limits: FormLimits) -> list[FormItem]:
    body = bytearray()
    async for chunk in stream:
        body += chunk
    items: list[FormItem] = []
    for pair in bytes(body).split(b"&") if body else ():
        if not pair:
            continue
        if len(items) >= limits.max_parts:
            raise PayloadTooLarge(f"The form has more than {limits.max_parts} fields", param=None)
        raw_name, _, raw_value = pair.partition(b"=")
        name = decode_text("(a field name)", unquote_to_bytes(raw_name.replace(b"+", b" ")))
        if len(raw_value) > limits.max_text_bytes:
            raise PayloadTooLarge(f"Form field {_short(name)!r} is longer than {limits.max_text_bytes} bytes", param=name)
        items.append((name, decode_text(name, unquote_to_bytes(raw_value.replace(b"+", b" ")))))
    return items


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
