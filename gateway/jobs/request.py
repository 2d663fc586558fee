"""A job's stored request, and turning it back into an adapter's `GenerationRequest`.

At create time every media value is loaded once (through the SSRF guard) into a
stored file; the job keeps the public body with each medium replaced by
`{"file_id": …}`, plus the `MediaSpec` of each file under `_media`. That keeps
the job re-translatable for any provider after a restart or a failover.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from gateway.jobs.model import Job, MediaSpec
from gateway.schema import CreateVideoBody, MediaObject, MediaValue, build_request
from providers.base import GenerationRequest, Media, MediaKind

MediaSlot = tuple[str, MediaKind, MediaValue]
_SPECS = "_media"


def media_slots(body: CreateVideoBody) -> list[MediaSlot]:
    """Every media value in the body with its field path and kind."""
    slots: list[MediaSlot] = []
    for field in ("input_reference", "first_frame", "last_frame"):
        value = getattr(body, field)
        if value is not None:
            slots.append((field, "image", value))
    for i, kf in enumerate(body.keyframes or ()):
        slots.append((f"keyframes[{i}].image", "image", kf.image))
    if body.references is not None:
        for kind, items in (("image", body.references.images), ("video", body.references.videos), ("audio", body.references.audios)):
            for i, value in enumerate(items):
                slots.append((f"references.{kind}s[{i}]", kind, value))  # type: ignore[arg-type]
    return slots


def replace_media(body: CreateVideoBody, specs: dict[str, MediaSpec]) -> CreateVideoBody:
    """The body with the medium at each path replaced by a `{"file_id"}` reference."""
    tree = msgspec.to_builtins(body)
    for path, spec in specs.items():
        _set(tree, path, {"file_id": spec.file_id})
    return msgspec.convert(tree, CreateVideoBody)


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    parts: list[str | int] = []
    for piece in path.split("."):
        name, _, index = piece.partition("[")
        parts.append(name)
        if index:
            parts.append(int(index.rstrip("]")))
    node: Any = tree
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


def stored_request(body: CreateVideoBody, specs: dict[str, MediaSpec]) -> dict[str, Any]:
    doc = msgspec.to_builtins(body)
    doc[_SPECS] = {spec.file_id: msgspec.to_builtins(spec) for spec in specs.values()}
    return doc


def routing_request(body: CreateVideoBody, specs: dict[str, MediaSpec], *, default_model: str, end_user: str | None) -> GenerationRequest:
    """The request as routing and the capability check see it: media facts, no bytes.

    Media here name the stored file by a `vidgate-file:` URL; they are never sent.
    """
    by_file = {s.file_id: s for s in specs.values()}

    def resolve(value: MediaValue, kind: MediaKind, path: str) -> Media:
        spec = specs.get(path) or by_file[_file_id(value)]
        return _media(spec, url=spec.url or f"vidgate-file:{spec.file_id}")

    return build_request(body, default_model=default_model, media=resolve, end_user=end_user)


async def rebuild_request(job: Job, loader: Any, delivery: Literal["bytes", "url"]) -> GenerationRequest:
    """The job's request with every medium loaded the way the adapter takes it."""
    doc = dict(job.request)
    specs = {fid: msgspec.convert(s, MediaSpec) for fid, s in doc.pop(_SPECS, {}).items()}
    body = msgspec.convert(doc, CreateVideoBody)
    loaded: dict[str, Media] = {}
    for fid, spec in specs.items():
        loaded[fid] = await loader.to_media(spec, want=delivery)
    return build_request(
        body,
        default_model=job.model,
        media=lambda value, kind, path: loaded[_file_id(value)],
        end_user=end_user_of(job.tenant, job.metadata),
    )


def end_user_of(tenant: str, metadata: dict[str, str]) -> str:
    """A stable, opaque end-user id for upstream abuse checks: never the raw tenant or user."""
    import hashlib

    return "vg_" + hashlib.sha256(f"{tenant}\x00{metadata.get('user', '')}".encode()).hexdigest()[:40]


def _file_id(value: MediaValue) -> str:
    if isinstance(value, MediaObject) and value.file_id:
        return value.file_id
    raise KeyError(f"media value {value!r} was not stored as a file")


def _media(spec: MediaSpec, *, url: str) -> Media:
    return Media(kind=spec.kind, url=url, content_type=spec.content_type, width=spec.width, height=spec.height, duration_ms=spec.duration_ms)
