"""route(): configured order, catalog fallback, pins, per-request order, and the trace."""

from __future__ import annotations

from typing import Any

from gateway.catalog import ModelCatalog
from gateway.jobs.model import Candidate
from gateway.routing import ModelRoute, Plan, ProviderFacts, route
from providers.base import FirstFrameInput, GenerationRequest, Media, TextInput
from providers.capabilities import ModelCaps, Reason


def caps(model_id: str, **kw: Any) -> ModelCaps:
    base: dict[str, Any] = {
        "model_id": model_id,
        "modes": frozenset({"text", "first_frame"}),
        "durations": frozenset({5, 10}),
        "resolutions": frozenset({"720p", "1080p"}),
    }
    base.update(kw)
    return ModelCaps(**base)


# Three providers serving logical "seedance-x" under their own ids, with different limits.
ALPHA = ProviderFacts(
    name="alpha",
    models={"a-x": caps("a-x", durations=frozenset({5}))},
    catalog={"seedance-x": "a-x"},
)
BETA = ProviderFacts(
    name="beta",
    models={"b-x": caps("b-x", durations=frozenset({5, 10}), modes=frozenset({"text"}))},
    catalog={"seedance-x": "b-x"},
)
GAMMA = ProviderFacts(
    name="gamma",
    models={"g-x": caps("g-x", regions=frozenset({"CA"}), resolutions=frozenset({"720p"}))},
    catalog={"seedance-x": "g-x", "seedance-only-gamma": "g-x"},
    regions=frozenset({"CA"}),
)
PROVIDERS = [ALPHA, BETA, GAMMA]


def req(model: str = "seedance-x", **kw: Any) -> GenerationRequest:
    return GenerationRequest(model=model, input=kw.pop("input", TextInput(prompt="a cat")), **kw)


def plan_for(request: GenerationRequest, providers: list[ProviderFacts], models: dict[str, ModelRoute], **kw: Any) -> Plan:
    """route() with the catalog built from these providers and model routes, as the runtime builds it."""
    return route(request, providers, ModelCatalog(models, {p.name: p for p in providers}), **kw)


def order_of(plan: Plan) -> list[str]:
    return [c.provider for c in plan.trace.candidates]


def usable(plan: Plan) -> list[str]:
    return [c.provider for c in plan.trace.usable]


def test_catalog_fallback_in_provider_order() -> None:
    plan = plan_for(req(), PROVIDERS, {})
    assert plan.trace.rule == "catalog"
    assert plan.trace.candidates == [
        Candidate(provider="alpha", model_id="a-x"),
        Candidate(provider="beta", model_id="b-x"),
        Candidate(provider="gamma", model_id="g-x"),
    ]
    assert plan.reasons == {}


def test_catalog_only_lists_providers_that_have_the_model() -> None:
    plan = plan_for(req("seedance-only-gamma"), PROVIDERS, {})
    assert order_of(plan) == ["gamma"]


def test_unknown_model_has_no_candidates() -> None:
    plan = plan_for(req("nope"), PROVIDERS, {})
    assert plan.trace.candidates == []
    assert plan.reasons == {}


def test_configured_order_and_model_ids_win_over_the_catalog() -> None:
    models = {"seedance-x": ModelRoute(providers={"gamma": "g-x", "alpha": "a-x"})}
    plan = plan_for(req(), PROVIDERS, models)
    assert plan.trace.rule == "models.seedance-x"
    assert order_of(plan) == ["gamma", "alpha"]  # beta is not configured for this model

    models = {"seedance-x": ModelRoute(providers={"gamma": "g-x", "alpha": "a-x", "beta": "b-x"}, order=["beta", "alpha"])}
    assert order_of(plan_for(req(), PROVIDERS, models)) == ["beta", "alpha"]


def test_configured_model_id_missing_from_the_capability_table() -> None:
    models = {"seedance-x": ModelRoute(providers={"alpha": "a-x-2099", "beta": "b-x"})}
    plan = plan_for(req(), PROVIDERS, models)
    assert plan.trace.candidates[0] == Candidate(
        provider="alpha", model_id="a-x-2099", skipped="model: provider 'alpha' has no model 'a-x-2099' in its capability table"
    )
    assert usable(plan) == ["beta"]
    assert [r.field for r in plan.reasons["alpha"]] == ["model"]


def test_configured_provider_that_does_not_exist() -> None:
    models = {"seedance-x": ModelRoute(providers={"omega": "o-x", "alpha": "a-x"})}
    plan = plan_for(req(), PROVIDERS, models)
    assert plan.reasons["omega"] == [Reason("provider", "provider 'omega' is not configured")]
    assert usable(plan) == ["alpha"]


def test_capability_reasons_are_kept_on_the_trace() -> None:
    # 10 s: alpha only does 5 s; first frame: beta is text-only; gamma serves it
    request = req(seconds=10, input=FirstFrameInput(first_frame=Media(kind="image", url="https://x/a.png")))
    plan = plan_for(request, PROVIDERS, {})
    assert order_of(plan) == ["alpha", "beta", "gamma"]
    assert usable(plan) == ["gamma"]
    alpha, beta, gamma = plan.trace.candidates
    assert alpha.skipped is not None and alpha.skipped.startswith("seconds: 10 is not a duration of model a-x")
    assert beta.skipped is not None and beta.skipped.startswith("mode: model b-x does not support first_frame input")
    assert gamma.skipped is None
    assert sorted(plan.reasons) == ["alpha", "beta"]
    assert [r.field for r in plan.reasons["alpha"]] == ["seconds"]
    assert [r.field for r in plan.reasons["beta"]] == ["mode"]


def test_every_reason_of_a_candidate_is_joined_on_the_trace() -> None:
    plan = plan_for(req(seconds=7, resolution="1080p"), [GAMMA], {})
    (only,) = plan.trace.candidates
    assert [r.field for r in plan.reasons["gamma"]] == ["seconds", "resolution"]
    assert only.skipped is not None
    assert only.skipped.count("; ") == 1
    assert "seconds: " in only.skipped and "resolution: " in only.skipped


def test_regions_of_the_provider_are_checked() -> None:
    us_only = ProviderFacts(name="gamma", models=GAMMA.models, catalog=GAMMA.catalog, regions=frozenset({"US"}))
    plan = plan_for(req(), [us_only], {})
    assert usable(plan) == []
    assert [r.field for r in plan.reasons["gamma"]] == ["model"]


def test_disabled_provider_is_skipped_with_a_reason() -> None:
    off = ProviderFacts(name="alpha", models=ALPHA.models, catalog=ALPHA.catalog, enabled=False)
    plan = plan_for(req(), [off, BETA], {})
    assert plan.trace.candidates[0] == Candidate(provider="alpha", model_id="a-x", skipped="provider: provider 'alpha' is disabled")
    assert usable(plan) == ["beta"]


def test_nothing_can_serve() -> None:
    plan = plan_for(req(seconds=7), [ALPHA, BETA], {})
    assert usable(plan) == []
    assert sorted(plan.reasons) == ["alpha", "beta"]


def test_pin() -> None:
    plan = plan_for(req(), PROVIDERS, {}, pin="beta")
    assert plan.trace.rule == "pin"
    assert plan.trace.candidates == [Candidate(provider="beta", model_id="b-x")]


def test_pin_to_a_provider_that_cannot_serve_does_not_fall_back() -> None:
    plan = plan_for(req(seconds=10), PROVIDERS, {}, pin="alpha")
    assert order_of(plan) == ["alpha"]
    assert usable(plan) == []
    assert [r.field for r in plan.reasons["alpha"]] == ["seconds"]


def test_pin_to_a_provider_outside_the_model_config() -> None:
    models = {"seedance-x": ModelRoute(providers={"alpha": "a-x"})}
    plan = plan_for(req(), PROVIDERS, models, pin="beta")
    assert plan.reasons["beta"] == [Reason("model", "provider 'beta' does not serve model 'seedance-x'")]
    assert usable(plan) == []

    plan = plan_for(req(), PROVIDERS, {}, pin="omega")
    assert plan.reasons["omega"] == [Reason("provider", "provider 'omega' is not configured")]


def test_pin_wins_over_order() -> None:
    plan = plan_for(req(), PROVIDERS, {}, pin="beta", order=["gamma", "alpha"])
    assert order_of(plan) == ["beta"]


def test_request_order_puts_its_providers_first_then_the_rest() -> None:
    plan = plan_for(req(), PROVIDERS, {}, order=["gamma", "beta"])
    assert order_of(plan) == ["gamma", "beta", "alpha"]
    assert usable(plan) == ["gamma", "beta", "alpha"]


def test_request_order_ignores_duplicates_of_configured_names() -> None:
    models = {"seedance-x": ModelRoute(providers={"alpha": "a-x", "beta": "b-x"})}
    plan = plan_for(req(), PROVIDERS, models, order=["beta"])
    assert order_of(plan) == ["beta", "alpha"]


def test_request_order_without_fallbacks_uses_only_the_named_providers() -> None:
    plan = plan_for(req(), PROVIDERS, {}, order=["beta", "gamma"], allow_fallbacks=False)
    assert usable(plan)[0] == "beta"
    assert "alpha" not in order_of(plan)


def test_no_fallbacks_stops_at_the_first_usable_but_keeps_the_skipped() -> None:
    plan = plan_for(req(seconds=10), PROVIDERS, {}, order=["alpha", "beta"], allow_fallbacks=False)
    assert order_of(plan) == ["alpha", "beta"]
    assert usable(plan) == ["beta"]
    assert [r.field for r in plan.reasons["alpha"]] == ["seconds"]


def test_no_fallbacks_and_no_named_provider_can_serve() -> None:
    plan = plan_for(req(seconds=10), PROVIDERS, {}, order=["alpha"], allow_fallbacks=False)
    assert order_of(plan) == ["alpha"]
    assert usable(plan) == []
    assert [r.field for r in plan.reasons["alpha"]] == ["seconds"]


def test_no_fallbacks_with_an_order_that_does_not_serve_the_model_says_why() -> None:
    # BUG: order entries that don't serve the model are dropped before the loop, so with
    # allow_fallbacks=False the plan has no candidates and no reasons at all; the service
    # then answers "No configured provider serves model 'seedance-only-gamma'", which is
    # false (gamma does) and names nothing about 'alpha'.
    plan = plan_for(req("seedance-only-gamma"), PROVIDERS, {}, order=["alpha"], allow_fallbacks=False)
    assert usable(plan) == []
    assert "alpha" in plan.reasons
    assert [r.field for r in plan.reasons["alpha"]] == ["model"]
