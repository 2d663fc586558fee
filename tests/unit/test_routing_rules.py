"""route() with routing rules, over the real useapi and PowerTokens capability tables,
and the config checks on `[[routes]]`."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gateway.catalog import ModelCatalog
from gateway.routing import ModelRoute, Plan, ProviderFacts, RouteContext, route
from gateway.settings import ConfigError, RouteSettings, describe, parse_settings
from providers.base import GenerationRequest, Keyframe, KeyframesInput, Media, TextInput
from providers.powertokens import models as powertokens
from providers.useapi import models as useapi

USEAPI = ProviderFacts(name="useapi", models=useapi.MODELS, catalog=useapi.CATALOG, regions=frozenset({"CA", "US"}))
POWERTOKENS = ProviderFacts(name="powertokens", models=powertokens.MODELS, catalog=powertokens.CATALOG)
PROVIDERS = [USEAPI, POWERTOKENS]
MODELS = {
    "seedance-2.0": ModelRoute(providers={"useapi": "seedance-2.0", "powertokens": powertokens.SEEDANCE_2_0}, order=["useapi", "powertokens"]),
}

BASE = """
[[keys]]
name = "app"
tenant = "acme"
key = "k-app"

[providers.useapi]
type = "useapi"
base_url = "https://api.useapi.net/v1/dreamina"
secret = "t"

[[providers.useapi.accounts]]
id = "CA:user@example.com"
region = "CA"

[providers.powertokens]
type = "powertokens"
base_url = "https://api.powertokens.ai"
secret = "t"
"""

ISSUE_ROUTES = """
[[routes]]
name = "keyframes-need-useapi"
when = { mode = "keyframes" }
use = "useapi"

[[routes]]
name = "seedance-2-ab"
when = { model = "seedance-2.0", "metadata.tier" = "free" }
split = { useapi = 70, powertokens = 30 }
sticky = "metadata.user"
fallback = ["useapi", "powertokens"]

[[routes]]
name = "default"
use = ["powertokens", "useapi"]
"""


def load_routes(text: str) -> list[RouteSettings]:
    return parse_settings(BASE + text, env={}, source="test.toml").routes


def config_error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_settings(BASE + text, env={}, source="test.toml")
    return str(info.value)


RULES = load_routes(ISSUE_ROUTES)


def req(model: str = "seedance-2.0", **kw: Any) -> GenerationRequest:
    return GenerationRequest(model=model, input=kw.pop("input", TextInput(prompt="a cat")), **kw)


def plan_for(request: GenerationRequest, providers: list[ProviderFacts], models: dict[str, ModelRoute], **kw: Any) -> Plan:
    """route() with the catalog built from these providers and model routes, as the runtime builds it."""
    return route(request, providers, ModelCatalog(models, {p.name: p for p in providers}), **kw)


def free(user: str | None, **kw: Any) -> RouteContext:
    metadata = {"tier": "free"} if user is None else {"tier": "free", "user": user}
    return RouteContext(metadata=metadata, **kw)


def names(plan: Plan) -> list[str]:
    return [c.provider for c in plan.trace.candidates]


def usable(plan: Plan) -> list[str]:
    return [c.provider for c in plan.trace.usable]


# -- which rule decides -------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    # seedance-2-ab and default both match a free-tier request; the earlier one decides
    plan = plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=free("u1"))
    assert plan.trace.rule == "seedance-2-ab"
    assert plan.trace.arm in ("useapi", "powertokens")

    plan = plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=RouteContext(metadata={"tier": "pro"}))
    assert plan.trace.rule == "default"
    assert plan.trace.arm is None
    assert names(plan) == ["powertokens", "useapi"]


def test_no_rule_matches_uses_the_model_order() -> None:
    rules = load_routes('[[routes]]\nname = "hd"\nwhen = { resolution = "1080p" }\nuse = "powertokens"\n')
    plan = plan_for(req(), PROVIDERS, MODELS, rules=rules)
    assert plan.trace.rule == "models.seedance-2.0"
    assert names(plan) == ["useapi", "powertokens"]
    assert plan_for(req("sora2"), PROVIDERS, MODELS, rules=rules).trace.rule == "catalog"


def test_no_rules_is_the_old_behaviour() -> None:
    assert plan_for(req(), PROVIDERS, MODELS) == plan_for(req(), PROVIDERS, MODELS, rules=[], context=RouteContext())


def test_keyframes_rule_routes_to_useapi() -> None:
    keyframes = KeyframesInput(frames=tuple(Keyframe(image=Media(kind="image", url=f"https://x/{i}.png")) for i in range(2)))
    plan = plan_for(req("seedance-1.0-fast", input=keyframes), PROVIDERS, MODELS, rules=RULES)
    assert plan.trace.rule == "keyframes-need-useapi"
    assert names(plan) == ["useapi"]
    assert plan.trace.candidates[0].model_id == "seedance-1.0-fast"
    assert plan.trace.candidates[0].skipped is None


def test_rule_matching_on_caller_key_and_header() -> None:
    rules = load_routes('[[routes]]\nname = "app-beta"\nwhen = { key = "app", "header.X-Route" = "beta" }\nuse = "powertokens"\n')
    hit = plan_for(req(), PROVIDERS, MODELS, rules=rules, context=RouteContext(key_name="app", headers={"x-route": "beta"}))
    assert hit.trace.rule == "app-beta" and names(hit) == ["powertokens"]
    miss = plan_for(req(), PROVIDERS, MODELS, rules=rules, context=RouteContext(key_name="app"))
    assert miss.trace.rule == "models.seedance-2.0"


def test_deadline_is_carried_on_the_plan() -> None:
    rules = load_routes('[[routes]]\nname = "slow"\nuse = "useapi"\ndeadline_seconds = 900\n')
    assert plan_for(req(), PROVIDERS, MODELS, rules=rules).deadline_seconds == 900
    assert plan_for(req(), PROVIDERS, MODELS, rules=RULES).deadline_seconds is None


# -- sticky splits --------------------------------------------------------------


def test_sticky_split_is_weighted_and_stable() -> None:
    users = [f"user-{i}" for i in range(1000)]
    arms = {u: plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=free(u)).trace.arm for u in users}
    counts = Counter(arms.values())
    assert 650 <= counts["useapi"] <= 750, counts
    assert counts["useapi"] + counts["powertokens"] == 1000

    fresh = load_routes(ISSUE_ROUTES)  # as after a restart, or on another replica
    for u in users[:200]:
        assert plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=free(u)).trace.arm == arms[u]
        assert plan_for(req(), PROVIDERS, MODELS, rules=fresh, context=free(u, request_key=f"vid_{u}")).trace.arm == arms[u]


def test_split_candidates_are_the_arm_then_the_fallback_order() -> None:
    seen: dict[str, list[str]] = {}
    for i in range(50):
        plan = plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=free(f"u{i}"))
        assert plan.trace.arm is not None
        seen[plan.trace.arm] = names(plan)
    assert seen == {"useapi": ["useapi", "powertokens"], "powertokens": ["powertokens", "useapi"]}


def test_split_without_fallback_uses_only_the_arm() -> None:
    rules = load_routes('[[routes]]\nname = "ab"\nsplit = { useapi = 1, powertokens = 1 }\nsticky = "key"\n')
    for key in ("a", "b", "c", "d", "e", "f"):
        plan = plan_for(req(), PROVIDERS, MODELS, rules=rules, context=RouteContext(key_name=key))
        assert names(plan) == [plan.trace.arm]


def test_fallback_that_omits_providers_does_not_try_them() -> None:
    rules = load_routes('[[routes]]\nname = "ab"\nsplit = { useapi = 1, powertokens = 0 }\nfallback = ["useapi"]\n')
    plan = plan_for(req(), PROVIDERS, MODELS, rules=rules, context=RouteContext(request_key="vid_1"))
    assert plan.trace.arm == "useapi"
    assert names(plan) == ["useapi"]


def test_missing_sticky_value_falls_back_to_the_request_key() -> None:
    arms = {plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=free(None, request_key=f"vid_{i}")).trace.arm for i in range(100)}
    assert arms == {"useapi", "powertokens"}
    again = [plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=free(None, request_key="vid_7")).trace.arm for _ in range(5)]
    assert len(set(again)) == 1


# -- filtering ----------------------------------------------------------------


def test_capability_skipped_arm_is_on_the_trace_and_the_fallback_serves() -> None:
    # useapi can't generate audio; whichever arm a user lands on, PowerTokens serves
    for i in range(20):
        plan = plan_for(req(generate_audio=True), PROVIDERS, MODELS, rules=RULES, context=free(f"u{i}"))
        assert usable(plan) == ["powertokens"]
        skipped = next(c for c in plan.trace.candidates if c.provider == "useapi")
        assert skipped.model_id == "seedance-2.0"
        assert skipped.skipped == "generate_audio: model seedance-2.0 can't generate audio"
        assert [r.field for r in plan.reasons["useapi"]] == ["generate_audio"]


def test_rule_provider_that_does_not_serve_the_model_is_skipped() -> None:
    plan = plan_for(req("sora2"), PROVIDERS, MODELS, rules=RULES)  # default: powertokens first; it has no sora2
    assert plan.trace.rule == "default"
    assert plan.trace.candidates[0].provider == "powertokens"
    assert plan.trace.candidates[0].skipped == "model: provider 'powertokens' does not serve model 'sora2'"
    assert usable(plan) == ["useapi"]


def test_pin_overrides_rules() -> None:
    plan = plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=free("u1"), pin="powertokens")
    assert plan.trace.rule == "pin"
    assert plan.trace.arm is None
    assert names(plan) == ["powertokens"]


def test_request_order_reorders_within_the_rule() -> None:
    plan = plan_for(req(), PROVIDERS, MODELS, rules=RULES, context=RouteContext(), order=["useapi"])
    assert plan.trace.rule == "default"
    assert names(plan) == ["useapi", "powertokens"]

    only_useapi = load_routes('[[routes]]\nname = "u"\nuse = "useapi"\n')
    plan = plan_for(req(), PROVIDERS, MODELS, rules=only_useapi, order=["powertokens"], allow_fallbacks=False)
    assert usable(plan) == []
    assert plan.trace.candidates[0].skipped == "provider: route 'u' does not send to provider 'powertokens'"


def test_unavailable_provider_is_skipped_with_the_reason() -> None:
    plan = plan_for(req(), PROVIDERS, MODELS, unavailable={"useapi": "cooling down after 5 failed jobs"})
    assert usable(plan) == ["powertokens"]
    assert plan.trace.candidates[0].skipped == "provider: provider 'useapi' is unavailable: cooling down after 5 failed jobs"
    assert [r.field for r in plan.reasons["useapi"]] == ["provider"]


def test_when_every_capable_candidate_is_unavailable_they_are_all_kept() -> None:
    cooling = {"useapi": "cooling down", "powertokens": "cooling down"}
    plan = plan_for(req(), PROVIDERS, MODELS, unavailable=cooling)
    assert usable(plan) == ["useapi", "powertokens"]
    assert plan.reasons == {}

    # the only other candidate can't serve (audio): the unavailable one is still kept
    plan = plan_for(req(generate_audio=True), PROVIDERS, MODELS, unavailable={"powertokens": "cooling down"})
    assert usable(plan) == ["powertokens"]
    assert list(plan.reasons) == ["useapi"]


# -- config checks --------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ('name = "r1"\nuse = "runway"', "route 'r1': use: 'runway' is not a configured provider"),
        ('name = "r1"\nsplit = { useapi = 1, runway = 1 }', "route 'r1': split: 'runway' is not a configured provider"),
        ('name = "r1"\nuse = "useapi"\nfallback = ["runway"]', "route 'r1': fallback: 'runway' is not a configured provider"),
        ('name = "r1"\nwhen = { duration = 5 }\nuse = "useapi"', "route 'r1': when.duration: unknown field 'duration'"),
        ('name = "r1"\nwhen = { seconds = { between = [4, 8] } }\nuse = "useapi"', "route 'r1': when.seconds: unknown operator 'between'"),
        ('name = "r1"\nuse = "useapi"\nsplit = { useapi = 1 }', "route 'r1': give exactly one of `use` or `split`"),
        ('name = "r1"', "route 'r1': give exactly one of `use` or `split`"),
        ('name = "r1"\nsplit = { useapi = -1, powertokens = 2 }', "route 'r1': split.useapi: weight must be a finite number >= 0"),
        ('name = "r1"\nsplit = { useapi = 0, powertokens = 0 }', "route 'r1': split: the weights must add up to more than 0"),
        ('name = "r1"\nsplit = { useapi = 1 }\nsticky = "user"', "route 'r1': sticky: unknown field 'user'"),
        ('name = "r1"\nuse = "useapi"\nsticky = "key"', "route 'r1': `sticky` only applies to a `split`"),
        ('name = "r1"\nuse = ["useapi", "useapi"]', "route 'r1': `use` names 'useapi' more than once"),
        ('name = "r1"\nwhen = { key = "nobody" }\nuse = "useapi"', "route 'r1': when.key: 'nobody' is not a configured key name"),
        ('name = "pin"\nuse = "useapi"', "route 'pin': the name is reserved"),
    ],
)
def test_bad_routes_are_config_errors_naming_the_route(routes: str, expected: str) -> None:
    message = config_error(f"[[routes]]\n{routes}\n")
    assert "routes[0]" in message
    assert expected in message


def test_duplicate_route_names_are_an_error() -> None:
    message = config_error('[[routes]]\nname = "r"\nuse = "useapi"\n\n[[routes]]\nname = "r"\nuse = "powertokens"\n')
    assert "routes[1]: route 'r': duplicate route name (also routes[0])" in message


def test_sticky_header_path_is_normalized() -> None:
    (rule,) = load_routes('[[routes]]\nname = "ab"\nsplit = { useapi = 1, powertokens = 1 }\nsticky = "header.X-User"\n')
    assert rule.sticky == "header.x-user"
    for user in ("u1", "u2", "u3"):
        arms = {
            plan_for(req(), PROVIDERS, MODELS, rules=[rule], context=RouteContext(headers={name: user}, request_key=f"vid_{i}")).trace.arm
            for i, name in enumerate(["X-User", "x-user", "X-USER"] * 5)
        }
        assert len(arms) == 1  # the header's value decides, whatever the request key or header case


def test_describe_lists_routes_in_order() -> None:
    text = describe(parse_settings(BASE + ISSUE_ROUTES, env={}, source="test.toml"))
    lines = text[text.index("routes (first match wins):") :].splitlines()[1:4]
    assert lines == [
        "  keyframes-need-useapi: when mode='keyframes' -> useapi",
        "  seedance-2-ab: when model='seedance-2.0', metadata.tier='free' -> split useapi 70 / powertokens 30 "
        "(sticky on metadata.user), fallback useapi, powertokens",
        "  default: when always -> powertokens then useapi",
    ]
