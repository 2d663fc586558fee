"""BytePlus ModelArk's Seedance task API: a `content` array of role-tagged items, media as URLs."""

from __future__ import annotations

from providers.descriptor import ProviderDescriptor
from providers.modelark import models
from providers.modelark.adapter import ModelArkAdapter

DESCRIPTOR = ProviderDescriptor(
    type="modelark",
    title="BytePlus ModelArk Seedance tasks",
    adapter=ModelArkAdapter,
    models=models.MODELS,
    catalog=models.CATALOG,
    # The 120-tasks-in-`queued` cap per account (MODELARK.md §10) is capacity, not an error
    # path, but the descriptor has no concurrency field: operators set
    # `max_concurrency = 120` on the provider (config/example.toml).
    simulator="providers.modelark.sim:simulator",
    docs={
        "create": "https://docs.byteplus.com/en/docs/ModelArk/1520757",
        "retrieve": "https://docs.byteplus.com/en/docs/ModelArk/1521309",
        "errors": "https://docs.byteplus.com/en/docs/ModelArk/1299023",
        "pricing": "https://docs.byteplus.com/en/docs/ModelArk/1544106",
    },
)
