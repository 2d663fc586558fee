"""PowerTokens' OpenAI-style `/v1/videos`: a `media` array of typed items, media as URLs."""

from __future__ import annotations

from providers.descriptor import ProviderDescriptor
from providers.powertokens import models
from providers.powertokens.adapter import PowerTokensAdapter

DESCRIPTOR = ProviderDescriptor(
    type="powertokens",
    title="PowerTokens /v1/videos",
    adapter=PowerTokensAdapter,
    models=models.MODELS,
    catalog=models.CATALOG,
    simulator="providers.powertokens.sim:simulator",
)
