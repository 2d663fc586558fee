"""Choosing providers for a request. Pure: no I/O, no clock, no randomness.

    plan = route(request, providers, catalog, rules=settings.routes, context=RouteContext(...))
    plan.trace.usable        # the providers to try, in order
    plan.trace.candidates    # every provider considered, with why it was skipped

The provider order comes from, in this precedence:

1. a per-request `pin` (trace.rule "pin");
2. the first routing rule whose `when` holds (trace.rule = its name; trace.arm = the
   chosen arm of a split), see `gateway.rules` for the conditions;
3. the model's provider order (`gateway.catalog`: from config, trace.rule "models.<name>",
   or, for a model config doesn't name, every provider whose catalog has it, "catalog").

A per-request `order` then reorders what 2 or 3 produced. The upstream model id for each
provider always comes from the catalog's resolution, the same one `/v1/models` shows; a provider a rule names that doesn't serve the model is skipped
with that reason. The capability check always filters, and so does `unavailable`
(providers cooling down), except when honouring it would leave nothing to try.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal, Protocol

import msgspec

from gateway.catalog import Resolution
from gateway.jobs.model import Candidate, MediaRef, RoutingTrace
from gateway.rules import RouteContext, field_value, matches, pick_arm
from gateway.settings import RouteSettings
from providers.base import GenerationRequest, MediaKind, media_items
from providers.capabilities import ModelCaps, Reason, check

__all__ = ["ModelResolver", "ModelRoute", "Plan", "ProviderFacts", "RouteContext", "route"]


class ProviderFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What routing needs to know about one configured provider."""

    name: str
    models: Mapping[str, ModelCaps]  # upstream model id -> caps
    catalog: Mapping[str, str]  # logical model -> upstream model id (adapter defaults)
    regions: frozenset[str] | None = None  # account regions, for providers with accounts
    enabled: bool = True
    # how the adapter takes media (`providers.base.Adapter`): a URL-taking upstream needs
    # each medium as a URL it can fetch, or inline within `inline_media`'s limits
    media_delivery: Literal["bytes", "url"] = "bytes"
    inline_media: Mapping[MediaKind, int | None] = msgspec.field(default_factory=dict)


class ModelRoute(msgspec.Struct, frozen=True, kw_only=True):
    """A configured logical model: provider name -> upstream model id, in order."""

    providers: Mapping[str, str]
    order: Sequence[str] | None = None


class ModelResolver(Protocol):
    def resolve(self, model: str) -> Resolution: ...


class Plan(msgspec.Struct, frozen=True):
    trace: RoutingTrace
    reasons: dict[str, list[Reason]]  # provider -> why it can't serve (skipped ones only)
    deadline_seconds: float | None = None  # from the matched rule, for the runner


_NO_CONTEXT = RouteContext()
_NONE_UNAVAILABLE: Mapping[str, str] = MappingProxyType({})


def route(
    request: GenerationRequest[MediaRef],
    providers: Sequence[ProviderFacts],
    catalog: ModelResolver,
    *,
    media_urls: bool = False,
    rules: Sequence[RouteSettings] = (),
    context: RouteContext = _NO_CONTEXT,
    unavailable: Mapping[str, str] = _NONE_UNAVAILABLE,
    pin: str | None = None,
    order: Sequence[str] | None = None,
    allow_fallbacks: bool = True,
) -> Plan:
    """The ordered candidates for `request` and why each skipped one can't serve it.

    `unavailable` maps a provider to why it shouldn't get new work now ("cooling down
    after 5 failed jobs"). With `allow_fallbacks=False` only the first usable candidate
    is kept. `media_urls`: vidgate can hand a URL-taking upstream a signed URL of its own
    for an upload (its public URL is reachable from the upstream).
    """
    by_name = {p.name: p for p in providers}
    resolution = catalog.resolve(request.model)
    model_ids = resolution.model_ids
    names, rule_name = list(resolution.order), resolution.rule
    arm: str | None = None
    deadline: float | None = None
    outside: set[str] = set()  # named by the caller's `order` but not by the route
    if pin is not None:
        names, rule_name = [pin], "pin"
    else:
        rule = next((r for r in rules if matches(r.conditions, request, context)), None)
        if rule is not None:
            names, arm = _rule_order(rule, request, context)
            rule_name, deadline = rule.name, rule.deadline_seconds
        if order:
            # The caller's order reorders; it can't add a provider. One it names that the
            # route doesn't send to stays on the trace, skipped with the reason.
            wanted = list(dict.fromkeys(order))
            outside = {n for n in wanted if n not in names}
            names = wanted + ([n for n in names if n not in wanted] if allow_fallbacks else [])

    assessed: list[tuple[str, str | None, list[Reason]]] = []
    for name in names:
        model_id = model_ids.get(name)
        why = _why_not(request, by_name.get(name), name, model_id, media_urls)
        if not why and name in outside:
            why = [Reason("provider", f"route {rule_name!r} does not send to provider {name!r}")]
        assessed.append((name, model_id, why))
    # Unavailability (a cooldown) is advice, not a capability: when every candidate that
    # could serve the request is unavailable, we keep them all rather than refuse a request
    # that would probably succeed; the runner's own backoff then applies.
    honour_unavailable = any(not why and name not in unavailable for name, _, why in assessed)

    candidates: list[Candidate] = []
    reasons: dict[str, list[Reason]] = {}
    for name, model_id, why in assessed:
        if not why and honour_unavailable and name in unavailable:
            why = [Reason("provider", f"provider {name!r} is unavailable: {unavailable[name]}")]
        if why:
            reasons[name] = why
            candidates.append(Candidate(provider=name, model_id=model_id, skipped="; ".join(f"{r.field}: {r.message}" for r in why)))
        else:
            candidates.append(Candidate(provider=name, model_id=model_id))
            if not allow_fallbacks:
                break
    return Plan(RoutingTrace(rule=rule_name, arm=arm, candidates=candidates), reasons, deadline)


def _rule_order(rule: RouteSettings, request: GenerationRequest[Any], context: RouteContext) -> tuple[list[str], str | None]:
    """The providers a matched rule sends to, in order, and the split arm it chose (if any)."""
    if rule.split is None:
        first, arm = rule.arms, None
    else:
        value = field_value(rule.sticky, request, context) if rule.sticky is not None else None
        # An absent (or empty) sticky value can't keep anyone on an arm; spread by request.
        key = context.request_key if value is None or value == "" else str(value)
        arm = pick_arm(rule.name, rule.split, key)
        first = [arm]
    return first + [n for n in rule.fallback or () if n not in first], arm


def _why_not(request: GenerationRequest[MediaRef], facts: ProviderFacts | None, name: str, model_id: str | None, media_urls: bool) -> list[Reason]:
    if facts is None:
        return [Reason("provider", f"provider {name!r} is not configured")]
    if not facts.enabled:
        return [Reason("provider", f"provider {name!r} is disabled")]
    if model_id is None:
        return [Reason("model", f"provider {name!r} does not serve model {request.model!r}")]
    if model_id not in facts.models:
        return [Reason("model", f"provider {name!r} has no model {model_id!r} in its capability table")]
    return check(request, facts.models[model_id], regions=facts.regions) + _unreachable_media(request, facts, media_urls)


def _unreachable_media(request: GenerationRequest[MediaRef], facts: ProviderFacts, media_urls: bool) -> list[Reason]:
    """The media a URL-taking upstream could not get: no https URL of the caller's, too big
    (or not allowed) to go inline, and no public vidgate URL to serve it from."""
    if facts.media_delivery != "url" or media_urls:
        return []
    reasons = []
    for path, kind, medium in media_items(request):
        if medium.url:
            continue
        inline = kind in facts.inline_media
        limit = facts.inline_media.get(kind)
        if inline and (limit is None or (medium.bytes is not None and medium.bytes <= limit)):
            continue
        why = f"inline {kind} is limited to {limit} bytes" if inline and limit is not None else f"it takes no inline {kind}"
        reasons.append(
            Reason(
                path,
                f"provider {facts.name!r} fetches media by URL and {why}: give an https URL, or set [server] public_url so vidgate can serve the upload to it",
            )
        )
    return reasons
