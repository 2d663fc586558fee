"""Turning the media a caller sent into stored files.

Callers give media as an http(s) URL, a `data:` URL, or `{"file_id"}` /
`{"url"}` / `{"image_url"}` objects. Whatever the form, the bytes end up in the
store with their type sniffed from the bytes themselves (a declared type is
never trusted) and their size, dimensions and duration probed, so capability
checks and every provider see the same facts. A remote https URL is kept beside
the stored copy for upstreams that would rather fetch it themselves.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import posixpath
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx

from gateway.errors import InvalidRequest, PayloadTooLarge
from gateway.forms import FilePart
from gateway.jobs.model import FileRecord, MediaRef
from gateway.jobs.store import Store
from gateway.urlguard import UrlGuard
from providers.base import Media, MediaKind
from providers.media_probe import Probe, probe

Kind = Literal["image", "video", "audio"]

ALLOWED_TYPES: dict[str, frozenset[str]] = {
    "image": frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"}),
    "video": frozenset({"video/mp4", "video/quicktime", "video/webm"}),
    "audio": frozenset({"audio/mpeg", "audio/wav", "audio/mp4", "audio/aac"}),
}
_KIND_OF = {ctype: kind for kind, types in ALLOWED_TYPES.items() for ctype in types}
_ARTICLE = {"image": "an image", "video": "a video", "audio": "an audio file"}
_MAX_FILENAME = 255
MAX_URL = 8192  # a media URL (a data: URL is bounded by its decoded size instead)
MAX_FILE_ID = 128


def kind_of(content_type: str | None) -> Kind | None:
    """The media kind of an allowed MIME type, or None."""
    return _KIND_OF.get(content_type or "")  # type: ignore[return-value]


def new_file_id() -> str:
    return "file_" + secrets.token_hex(12)


class MediaLoader:
    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        guard: UrlGuard,
        *,
        max_bytes: int,
        max_upload_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
        fetch_timeout: float = 30.0,
        id_factory: Callable[[], str] = new_file_id,
        urls: SignedMediaUrls | None = None,
    ) -> None:
        self._store = store
        self._http = http
        self._guard = guard
        self._max_bytes = max_bytes  # a fetched or data: URL medium
        self._max_upload_bytes = max_upload_bytes or max_bytes  # a file part ([security] max_upload_bytes)
        self._clock = clock
        self._fetch_timeout = fetch_timeout
        self._new_id = id_factory
        self._urls = urls  # None: vidgate has no public URL an upstream could fetch from

    # ------------------------------------------------------------------
    # caller media -> MediaRef
    # ------------------------------------------------------------------

    async def load(self, value: Any, kind: Kind, field: str, tenant: str, *, uploads: Mapping[str, FilePart] | None = None) -> MediaRef:
        """Resolve one media value from a request into a stored file of `kind`: a new one,
        unless the value names an earlier upload by its file id.

        `uploads` are the request's own file parts, named in it by placeholder file ids."""
        if isinstance(value, str):
            return await self._load_string(value, kind, field, tenant)
        file_id, url = _media_object(value, field)
        if url is not None:
            return await self._load_string(url, kind, field, tenant)
        part = (uploads or {}).get(file_id)
        if part is not None:
            record = await self._store_bytes(
                part.data, tenant, field, kind=kind, filename=_clean_filename(part.filename), purpose="video_input", sha256=part.sha256
            )
            return _spec(record, url=None)
        return await self._load_file_id(file_id, kind, field, tenant)

    async def _load_string(self, value: str, kind: Kind, field: str, tenant: str) -> MediaRef:
        scheme = value[:8].lower()
        if scheme.startswith("data:"):
            data = self._decode_data_url(value, field)
            record = await self._store_bytes(data, tenant, field, kind=kind, filename=None, purpose="video_input")
            return _spec(record, url=None)
        if scheme.startswith(("https://", "http://")):
            if len(value) > MAX_URL:
                raise InvalidRequest(f"{field}: a media URL may be at most {MAX_URL} characters long", param=field, code="invalid_media")
            data, filename = await self._download(value, field)
            record = await self._store_bytes(data, tenant, field, kind=kind, filename=filename, purpose="video_input")
            # Only https URLs are worth handing to an upstream; http ones go as bytes.
            return _spec(record, url=value if scheme.startswith("https://") else None)
        raise InvalidRequest(
            f"{field} must be an https URL, a base64 data: URL, or an object with file_id or url",
            param=field,
            code="invalid_media",
        )

    async def _load_file_id(self, file_id: str, kind: Kind, field: str, tenant: str) -> MediaRef:
        if len(file_id) > MAX_FILE_ID:
            raise InvalidRequest(f"{field}: file {file_id[:MAX_FILE_ID]!r}… not found", param=field, code="file_not_found")
        record = await self._store.get_file(file_id, tenant)
        if record is None:
            raise InvalidRequest(f"{field}: file {file_id!r} not found", param=field, code="file_not_found")
        if record.kind != kind:
            raise _wrong_kind(field, kind, record.content_type)
        return _spec(record, url=None)

    def _decode_data_url(self, value: str, field: str) -> bytes:
        header, sep, payload = value[5:].partition(",")
        if not sep or not header.lower().endswith(";base64"):
            raise InvalidRequest(f"{field}: a data: URL must look like data:<type>;base64,<data>", param=field, code="invalid_media")
        payload = "".join(payload.split())  # tolerate line-wrapped base64
        if len(payload) // 4 * 3 > self._max_bytes + 3:
            raise _too_large(field, self._max_bytes)
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{field}: the data: URL is not valid base64", param=field, code="invalid_media") from None
        if len(data) > self._max_bytes:
            raise _too_large(field, self._max_bytes)
        return data

    async def _download(self, url: str, field: str) -> tuple[bytes, str | None]:
        """GET `url` through the guard, at most `max_bytes`, within `fetch_timeout`."""
        try:
            async with asyncio.timeout(self._fetch_timeout):
                response = await self._guard.open(self._http, "GET", url, field=field, timeout=httpx.Timeout(self._fetch_timeout))
                try:
                    if not 200 <= response.status_code < 300:
                        raise InvalidRequest(
                            f"could not fetch {field}: the server answered HTTP {response.status_code}",
                            param=field,
                            code="media_fetch_failed",
                        )
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > self._max_bytes:
                        raise _too_large(field, self._max_bytes)
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self._max_bytes:
                            raise _too_large(field, self._max_bytes)
                        chunks.append(chunk)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise InvalidRequest(f"could not fetch {field}: timed out", param=field, code="media_fetch_failed") from None
        except httpx.HTTPError as exc:
            raise InvalidRequest(f"could not fetch {field}: {type(exc).__name__}", param=field, code="media_fetch_failed") from None
        return b"".join(chunks), _filename_from_url(response.url)

    # ------------------------------------------------------------------
    # uploads and storage
    # ------------------------------------------------------------------

    async def save_upload(self, tenant: str, upload: FilePart, *, purpose: str) -> FileRecord:
        """Store a `POST /v1/files` upload; its kind comes from the sniffed type.

        The content type the client declared is not trusted and not used."""
        if len(upload.data) > self._max_upload_bytes:
            raise _too_large(upload.name, self._max_upload_bytes)
        return await self._store_bytes(
            upload.data, tenant, upload.name, kind=None, filename=_clean_filename(upload.filename), purpose=purpose, sha256=upload.sha256
        )

    async def _store_bytes(
        self, data: bytes | bytearray, tenant: str, field: str, *, kind: Kind | None, filename: str | None, purpose: str, sha256: str | None = None
    ) -> FileRecord:
        if not data:
            raise InvalidRequest(f"{field}: the media is empty", param=field, code="invalid_media")
        # Pure CPU on up to max_bytes: off the loop. (sha256 releases the GIL; the probe's walk
        # is bounded, and in a thread the loop still gets the GIL every switch interval.)
        facts, digest = await asyncio.to_thread(_probe_and_hash, data, sha256)
        sniffed = facts.content_type
        found = kind_of(sniffed)
        if found is None:
            allowed = ", ".join(sorted(_KIND_OF if kind is None else ALLOWED_TYPES[kind]))
            raise InvalidRequest(
                f"{field}: unsupported media type {sniffed or 'unknown'}; allowed: {allowed}",
                param=field,
                code="unsupported_media_type",
            )
        if kind is not None and found != kind:
            raise _wrong_kind(field, kind, sniffed)
        record = FileRecord(
            id=self._new_id(),
            tenant=tenant,
            created_at=self._clock(),
            filename=filename,
            content_type=sniffed,  # type: ignore[arg-type]  # kind_of() matched, so not None
            bytes=len(data),
            kind=found,
            purpose=purpose,
            width=facts.width,
            height=facts.height,
            duration_ms=facts.duration_ms,
            sha256=digest,
        )
        return await self._store.put_file(record, data)

    # ------------------------------------------------------------------
    # MediaRef -> what an adapter gets
    # ------------------------------------------------------------------

    async def media_for(self, ref: MediaRef, *, delivery: Literal["bytes", "url"], inline: Mapping[MediaKind, int | None]) -> Media:
        """The medium for an adapter. A bytes-taking upstream gets the stored bytes. A URL-taking
        one gets the caller's own https URL when there is one; else the bytes, where its
        `inline` limits allow them; else a signed, expiring URL vidgate serves the file at
        (routing refused the request already if there is no such URL)."""
        url: str | None = None
        data: bytes | None = None
        if delivery == "url" and ref.url:
            url = ref.url
        elif delivery == "url" and not _inline_ok(ref, inline):
            if self._urls is None:
                raise ValueError(f"{ref.kind} {ref.file_id} can't reach a URL-taking upstream: no public_url to serve it from")
            url = self._urls.url_for(ref.file_id, self._clock())
        else:
            data = await self._store.read_file(ref.file_id)
        return Media(
            kind=ref.kind,
            url=url,
            data=data,
            content_type=ref.content_type,
            width=ref.width,
            height=ref.height,
            duration_ms=ref.duration_ms,
        )


def _probe_and_hash(data: bytes | bytearray, sha256: str | None) -> tuple[Probe, str]:
    return probe(data), sha256 or hashlib.sha256(data).hexdigest()  # type: ignore[arg-type]  # probe reads a bytearray alike


def _inline_ok(ref: MediaRef, inline: Mapping[MediaKind, int | None]) -> bool:
    if ref.kind not in inline:
        return False
    limit = inline[ref.kind]
    return limit is None or (ref.bytes is not None and ref.bytes <= limit)


class SignedMediaUrls:
    """Unguessable, expiring URLs at which an upstream can fetch an upload (`GET /v1/media/{token}`).

    The token is `<file id>.<expiry>.<HMAC>`; the secret is `[security] media_url_secret`
    (shared by replicas) or, without one, random per process."""

    def __init__(self, base_url: str, secret: str | None, *, ttl: float) -> None:
        self._base = base_url.rstrip("/")
        self._key = (secret or secrets.token_hex(32)).encode()
        self._ttl = ttl

    def url_for(self, file_id: str, now: float) -> str:
        expires = int(now + self._ttl)
        return f"{self._base}/v1/media/{file_id}.{expires}.{self._mac(file_id, expires)}"

    def file_of(self, token: str, now: float) -> str | None:
        """The file id a token grants access to, or None if it is forged or expired."""
        file_id, _, rest = token.partition(".")
        expiry, _, mac = rest.partition(".")
        if not (file_id and expiry.isascii() and expiry.isdigit() and len(expiry) <= 12 and mac):
            return None
        if int(expiry) < now or not hmac.compare_digest(mac, self._mac(file_id, int(expiry))):
            return None
        return file_id

    def _mac(self, file_id: str, expires: int) -> str:
        digest = hmac.new(self._key, f"{file_id}.{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _media_object(value: Any, field: str) -> tuple[str, str | None]:
    """(file_id, None) or ("", url) from a dict or an object with those attributes."""
    if isinstance(value, Mapping):
        file_id, url, image_url = value.get("file_id"), value.get("url"), value.get("image_url")
    else:
        file_id, url, image_url = (getattr(value, name, None) for name in ("file_id", "url", "image_url"))
    given = [v for v in (file_id, url, image_url) if v is not None]
    if len(given) != 1 or not all(isinstance(v, str) and v for v in given):
        raise InvalidRequest(
            f"{field} must be a URL string or an object with exactly one of file_id, url, image_url",
            param=field,
            code="invalid_media",
        )
    if file_id is not None:
        return file_id, None
    return "", url if url is not None else image_url


def _spec(record: FileRecord, *, url: str | None) -> MediaRef:
    return MediaRef(
        kind=record.kind,
        file_id=record.id,
        url=url,
        content_type=record.content_type,
        bytes=record.bytes,
        width=record.width,
        height=record.height,
        duration_ms=record.duration_ms,
    )


def _wrong_kind(field: str, kind: Kind, got: str | None) -> InvalidRequest:
    return InvalidRequest(
        f"{field}: expected {_ARTICLE[kind]}, got {got or 'an unknown type'}",
        param=field,
        code="unsupported_media_type",
    )


def _too_large(field: str, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"{field} is larger than the {limit}-byte limit", param=field)


def _filename_from_url(url: httpx.URL) -> str | None:
    return _clean_filename(posixpath.basename(url.path))


def _clean_filename(name: str | None) -> str | None:
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:_MAX_FILENAME] or None
