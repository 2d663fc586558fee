"""gateway.rules: each condition field and operator, load-time errors, and split arm choice."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from gateway.rules import RouteContext, check_field, matches, parse_when, pick_arm
from providers.base import GenerationRequest, Keyframe, KeyframesInput, Media, ReferenceInput, TextInput

IMAGE = Media(kind="image", url="https://example.com/a.png")
VIDEO = Media(kind="video", url="https://example.com/a.mp4")
AUDIO = Media(kind="audio", url="https://example.com/a.mp3")


def req(**kw: Any) -> GenerationRequest:
    kw.setdefault("model", "seedance-2.0")
    kw.setdefault("input", TextInput(prompt="a cat"))
    return GenerationRequest(**kw)


def holds(when: dict[str, Any], request: GenerationRequest | None = None, **context: Any) -> bool:
    return matches(parse_when(when), request or req(), RouteContext(**context))


def parse_error(when: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as info:
        parse_when(when)
    return str(info.value)


# -- scalar equality, field by field ------------------------------------------


def test_empty_when_matches_everything() -> None:
    assert holds({})


def test_model() -> None:
    assert holds({"model": "seedance-2.0"})
    assert not holds({"model": "seedance-2.0-fast"})


def test_mode() -> None:
    keyframes = req(input=KeyframesInput(frames=(Keyframe(image=IMAGE), Keyframe(image=IMAGE))))
    assert holds({"mode": "keyframes"}, keyframes)
    assert not holds({"mode": "keyframes"})
    assert holds({"mode": "text"})


def test_resolution_and_ratio() -> None:
    request = req(resolution="1080p", ratio="16:9")
    assert holds({"resolution": "1080p", "ratio": "16:9"}, request)
    assert not holds({"resolution": "720p"}, request)
    assert not holds({"resolution": "1080p"})  # not given: equality fails


def test_seconds_number_and_auto() -> None:
    assert holds({"seconds": 5}, req(seconds=5))
    assert not holds({"seconds": 5}, req(seconds=10))
    assert holds({"seconds": "auto"}, req(seconds="auto"))
    assert not holds({"seconds": 5})


def test_audio_is_generate_audio_truthiness() -> None:
    assert holds({"audio": True}, req(generate_audio=True))
    assert holds({"audio": False}, req(generate_audio=False))
    assert holds({"audio": False})  # not asked counts as no audio
    assert not holds({"audio": True})


def test_reference_counts() -> None:
    request = req(input=ReferenceInput(prompt="@image1 @image2 @video1", images=(IMAGE, IMAGE), videos=(VIDEO,)))
    assert holds({"images": 2, "videos": 1, "audios": 0, "references": 3}, request)
    assert not holds({"images": 1}, request)
    assert holds({"references": 0})  # not reference mode: no reference media
    assert holds({"audios": {"min": 1}}, req(input=ReferenceInput(prompt="x", images=(IMAGE,), audios=(AUDIO,))))


def test_metadata() -> None:
    assert holds({"metadata.tier": "free"}, metadata={"tier": "free"})
    assert not holds({"metadata.tier": "free"}, metadata={"tier": "pro"})
    assert not holds({"metadata.tier": "free"}, metadata={"Tier": "free"})  # metadata keys are exact
    assert not holds({"metadata.tier": "free"})


def test_toml_dotted_keys_are_the_same_as_quoted_ones() -> None:
    # `when = { metadata.tier = "free" }` decodes as a nested table
    assert parse_when({"metadata": {"tier": "free"}}) == parse_when({"metadata.tier": "free"})
    assert holds({"metadata": {"tier": "free"}, "header": {"X-Plan": "gold"}}, metadata={"tier": "free"}, headers={"x-plan": "gold"})


def test_key_and_tenant() -> None:
    assert holds({"key": "app", "tenant": "acme"}, key_name="app", tenant="acme")
    assert not holds({"key": "app"}, key_name="ops", tenant="acme")
    assert not holds({"tenant": "acme"})


def test_header_names_are_case_insensitive_values_are_not() -> None:
    assert holds({"header.X-Route": "beta"}, headers={"x-route": "beta"})
    assert holds({"header.x-route": "beta"}, headers={"X-Route": "beta"})
    assert not holds({"header.x-route": "beta"}, headers={"x-route": "Beta"})
    assert not holds({"header.x-route": "beta"})


# -- operators ----------------------------------------------------------------


def test_in() -> None:
    when = {"resolution": {"in": ["1080p", "4k"]}}
    assert holds(when, req(resolution="4k"))
    assert not holds(when, req(resolution="720p"))
    assert not holds(when)


def test_not_and_not_in_hold_when_the_field_is_absent() -> None:
    assert holds({"resolution": {"not": "1080p"}}, req(resolution="720p"))
    assert not holds({"resolution": {"not": "1080p"}}, req(resolution="1080p"))
    assert holds({"resolution": {"not": "1080p"}})
    assert holds({"metadata.tier": {"not_in": ["free", "trial"]}}, metadata={"tier": "pro"})
    assert not holds({"metadata.tier": {"not_in": ["free", "trial"]}}, metadata={"tier": "trial"})
    assert holds({"metadata.tier": {"not_in": ["free", "trial"]}})


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(3, False), (4, True), (7, True), (10, True), (11, False), ("auto", False), (None, False)],
)
def test_range_is_inclusive_and_needs_a_number(seconds: Any, expected: bool) -> None:
    assert holds({"seconds": {"min": 4, "max": 10}}, req(seconds=seconds)) is expected


def test_range_with_one_bound() -> None:
    assert holds({"seconds": {"min": 10}}, req(seconds=15))
    assert not holds({"seconds": {"min": 10}}, req(seconds=5))
    assert holds({"seconds": {"max": 5.5}}, req(seconds=5))
    assert holds({"references": {"max": 0}})


def test_exists() -> None:
    assert holds({"metadata.user": {"exists": True}}, metadata={"user": "u1"})
    assert not holds({"metadata.user": {"exists": True}})
    assert holds({"metadata.user": {"exists": False}})
    assert holds({"seconds": {"exists": False}})
    assert not holds({"seconds": {"exists": False}}, req(seconds="auto"))
    assert holds({"header.x-user": {"exists": True}}, headers={"X-User": "u"})


def test_operators_in_one_table_all_hold() -> None:
    when = {"seconds": {"min": 4, "max": 12, "not": 8}}
    assert holds(when, req(seconds=6))
    assert not holds(when, req(seconds=8))


def test_every_condition_must_hold() -> None:
    when = {"model": "seedance-2.0", "metadata.tier": "free"}
    assert holds(when, metadata={"tier": "free"})
    assert not holds(when, req(model="sora2"), metadata={"tier": "free"})
    assert not holds(when, metadata={"tier": "pro"})


# -- load-time errors ---------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ({"duration": 5}, "when.duration: unknown field 'duration'"),
        ({"metadata.": "x"}, "when.metadata.: 'metadata.' needs a name"),
        ({"seconds": {"between": [4, 10]}}, "when.seconds: unknown operator 'between'"),
        ({"seconds": {}}, "when.seconds: empty operator table"),
        ({"model": {"in": []}}, "when.model: `in` takes a non-empty list"),
        ({"model": {"not_in": "sora2"}}, "when.model: `not_in` takes a non-empty list"),
        ({"model": {"min": 1}}, "when.model: `min` needs a numeric field"),
        ({"seconds": {"min": "4"}}, "when.seconds: `min` takes a number"),
        ({"seconds": {"min": 10, "max": 4}}, "when.seconds: min 10 is above max 4"),
        ({"seconds": 5.5}, 'when.seconds: expected a whole number of seconds or "auto"'),
        ({"images": True}, "when.images: expected a whole number >= 0"),
        ({"audio": "yes"}, "when.audio: expected true or false"),
        ({"metadata.tier": 1}, "when.metadata.tier: expected a string"),
        ({"mode": "keyframe"}, "when.mode: 'keyframe' is not a known mode"),
        ({"resolution": {"in": ["720p", "1080"]}}, "when.resolution: '1080' is not a known resolution"),
        ({"key": {"exists": "yes"}}, "when.key: `exists` takes true or false"),
    ],
)
def test_bad_conditions_are_errors_naming_the_field(when: dict[str, Any], expected: str) -> None:
    assert parse_error(when).startswith(expected)


def test_check_field_normalizes_header_names() -> None:
    assert check_field("header.X-User") == "header.x-user"
    assert check_field("metadata.User") == "metadata.User"
    assert check_field("tenant") == "tenant"
    with pytest.raises(ValueError, match="unknown field 'user'"):
        check_field("user")


# -- split arms ---------------------------------------------------------------


def expected_arm(rule: str, weights: dict[str, float], value: str) -> str:
    """The documented algorithm, written out independently of the implementation."""
    h = int.from_bytes(hashlib.sha256(f"{rule}\x00{value}".encode()).digest()[:8], "big") / 2**64
    total, cumulative = sum(weights.values()), 0.0
    for arm, weight in weights.items():
        cumulative += weight
        if weight > 0 and h * total < cumulative:
            return arm
    raise AssertionError("unreachable")


def test_pick_arm_follows_the_documented_hash() -> None:
    weights = {"useapi": 70.0, "powertokens": 30.0}
    for i in range(200):
        assert pick_arm("seedance-2-ab", weights, f"user-{i}") == expected_arm("seedance-2-ab", weights, f"user-{i}")


def test_pick_arm_depends_on_the_rule_name() -> None:
    weights = {"a": 1.0, "b": 1.0}
    picks = {(pick_arm("one", weights, f"u{i}"), pick_arm("two", weights, f"u{i}")) for i in range(100)}
    assert ("a", "b") in picks and ("b", "a") in picks  # the two rules split users independently


def test_pick_arm_never_chooses_a_zero_weight_arm() -> None:
    for weights in ({"a": 0.0, "b": 1.0}, {"b": 1.0, "a": 0.0}, {"a": 0.0, "b": 2.0, "c": 0.0}):
        assert {pick_arm("r", weights, f"u{i}") for i in range(500)} == {"b"}
