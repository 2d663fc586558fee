"""From a job's stored request to the one an adapter takes, and the end-user id it carries."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from gateway.jobs.model import StoredRequest
from providers.base import GenerationRequest, Media, map_media


def end_user_of(tenant: str, metadata: Mapping[str, str]) -> str:
    """A stable, opaque end-user id for upstream abuse checks: never the raw tenant or user."""
    return "vg_" + hashlib.sha256(f"{tenant}\x00{metadata.get('user', '')}".encode()).hexdigest()[:40]


def adapter_request(stored: StoredRequest, media: Sequence[Media]) -> GenerationRequest[Media]:
    """The stored request with its files replaced (in `media_items` order) by what the adapter takes."""
    return map_media(stored, media)
