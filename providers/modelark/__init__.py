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
    # path: vidgate never has more than that many jobs there, the rest wait in its queue.
    default_max_concurrency=120,
    calls_back=True,  # callback_url: the task object on every status change (§7)
    simulator="providers.modelark.sim:simulator",
    docs={
        "create": "https://docs.byteplus.com/en/docs/ModelArk/1520757",
        "retrieve": "https://docs.byteplus.com/en/docs/ModelArk/1521309",
        "errors": "https://docs.byteplus.com/en/docs/ModelArk/1299023",
        "pricing": "https://docs.byteplus.com/en/docs/ModelArk/1544106",
    },
)
