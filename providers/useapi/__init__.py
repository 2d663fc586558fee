"""useapi.net's Dreamina v1 API: flat `frame_N_*` / `omni_N_*` fields, assets uploaded per account."""

from __future__ import annotations

from providers.descriptor import AccountRules, ProviderDescriptor
from providers.useapi import models
from providers.useapi.adapter import UseapiAdapter

DESCRIPTOR = ProviderDescriptor(
    type="useapi",
    title="useapi.net Dreamina v1",
    adapter=UseapiAdapter,
    models=models.MODELS,
    catalog=models.CATALOG,
    # useapi's `maxJobs` is 1-50 per account; account ids are `REGION:email` (UPSTREAMS 1.2)
    accounts=AccountRules(id_pattern=r"(?P<region>[A-Z]{2}):[^@\s]+@[^@\s]+", max_jobs=50, example="CA:user@example.com"),
    simulator="providers.useapi.sim:simulator",
    finds_lost_submits=True,  # GET /scheduler lists running jobs with their replyUrl (UPSTREAMS 1.7)
    calls_back=True,  # replyUrl: the job record on submission and at its end (UPSTREAMS 1.8)
    usd_per_credit=models.USD_PER_CREDIT,
)
