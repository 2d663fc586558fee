"""Upgrading job documents written before schema v4, for both stores' migrations.

Until v4 a job stored the caller's public request body (media replaced by
`{"file_id": …}`) with each file's facts under a `_media` key, and the mode was
inferred again whenever the job was read. Since v4 it stores the strict
per-mode request over `MediaRef`s. The old form is converted once, here.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.jobs.model import MediaRef
from gateway.jobs.request import end_user_of
from gateway.schema import CreateVideoBody, MediaObject, MediaValue, build_request
from providers.base import MediaKind

_SPECS = "_media"


def is_legacy(doc: dict[str, Any]) -> bool:
    request = doc.get("request")
    return isinstance(request, dict) and "input" not in request


def upgrade_job_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """A pre-v4 job document in the v4 form (returned as is when already upgraded)."""
    if not is_legacy(doc):
        return doc
    body_doc = dict(doc["request"])
    refs = {fid: msgspec.convert(spec, MediaRef) for fid, spec in body_doc.pop(_SPECS, {}).items()}
    body = msgspec.convert(body_doc, CreateVideoBody)

    def ref(value: MediaValue, kind: MediaKind, path: str) -> MediaRef:
        if isinstance(value, MediaObject) and value.file_id in refs:
            return refs[value.file_id]
        raise ValueError(f"job {doc.get('id')}: {path} was not stored as a file")

    end_user = end_user_of(doc.get("tenant", ""), doc.get("metadata") or {})
    request = build_request(body, default_model=doc.get("model") or "", media=ref, end_user=end_user)
    return {**doc, "request": msgspec.to_builtins(request)}
