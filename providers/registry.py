"""Every provider vidgate can talk to: one descriptor per package, one line each.

Generic code looks a provider type up here and asks its descriptor; it never
branches on a provider's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from providers import modelark, powertokens, useapi
from providers.descriptor import ProviderDescriptor

DESCRIPTORS: Mapping[str, ProviderDescriptor] = MappingProxyType(
    {
        d.type: d
        for d in (
            useapi.DESCRIPTOR,
            powertokens.DESCRIPTOR,
            modelark.DESCRIPTOR,
        )
    }
)


def provider_types() -> list[str]:
    return list(DESCRIPTORS)


def descriptor(provider_type: str) -> ProviderDescriptor:
    """The descriptor of a provider type (`KeyError` if unknown)."""
    return DESCRIPTORS[provider_type]
