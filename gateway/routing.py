"""Choosing providers for a request. Pure: no I/O, no clock.

First cut (the rules engine of the routing issue plugs in at `route()`): the
model's provider order from config (or, for a model config doesn't name, every
provider whose catalog has it, in config order), narrowed by a per-request pin,
then filtered by the capability check. Every candidate considered is kept on the
trace with the reason it was skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from gateway.jobs.model import Candidate, RoutingTrace
from providers.base import GenerationRequest
from providers.capabilities import ModelCaps, Reason, check


class ProviderFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What routing needs to know about one configured provider."""

    name: str
    models: Mapping[str, ModelCaps]  # upstream model id -> caps
    catalog: Mapping[str, str]  # logical model -> upstream model id (adapter defaults)
    regions: frozenset[str] | None = None  # account regions, for providers with accounts
    enabled: bool = True


class ModelRoute(msgspec.Struct, frozen=True, kw_only=True):
    """A configured logical model: provider name -> upstream model id, in order."""

    providers: Mapping[str, str]
    order: Sequence[str] | None = None


class Plan(msgspec.Struct, frozen=True):
    trace: RoutingTrace
    reasons: dict[str, list[Reason]]  # provider -> why it can't serve (skipped ones only)


def route(
    request: GenerationRequest,
    providers: Sequence[ProviderFacts],
    models: Mapping[str, ModelRoute],
    *,
    pin: str | None = None,
    order: Sequence[str] | None = None,
    allow_fallbacks: bool = True,
) -> Plan:
    by_name = {p.name: p for p in providers}
    configured = models.get(request.model)
    if configured is not None:
        names = list(configured.order or configured.providers)
        model_ids = dict(configured.providers)
        rule = f"models.{request.model}"
    else:
        names = [p.name for p in providers if request.model in p.catalog]
        model_ids = {p.name: p.catalog[request.model] for p in providers if request.model in p.catalog}
        rule = "catalog"

    if order:
        preferred = [n for n in order if n in names]
        names = preferred + ([n for n in names if n not in preferred] if allow_fallbacks else [])
    if pin is not None:
        names = [pin]

    candidates: list[Candidate] = []
    reasons: dict[str, list[Reason]] = {}
    for name in names:
        facts = by_name.get(name)
        model_id = model_ids.get(name)
        why: list[Reason] = []
        if facts is None:
            why.append(Reason("provider", f"provider {name!r} is not configured"))
        elif not facts.enabled:
            why.append(Reason("provider", f"provider {name!r} is disabled"))
        elif model_id is None:
            why.append(Reason("model", f"provider {name!r} does not serve model {request.model!r}"))
        elif model_id not in facts.models:
            why.append(Reason("model", f"provider {name!r} has no model {model_id!r} in its capability table"))
        else:
            why = check(request, facts.models[model_id], regions=facts.regions)
        if why:
            reasons[name] = why
            candidates.append(Candidate(provider=name, model_id=model_id, skipped="; ".join(f"{r.field}: {r.message}" for r in why)))
        else:
            candidates.append(Candidate(provider=name, model_id=model_id))
        if not allow_fallbacks and not why:
            break
    return Plan(RoutingTrace(rule=rule if pin is None else "pin", candidates=candidates), reasons)
