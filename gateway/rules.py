"""Routing rule conditions: parsing a route's `when` table, matching it, and picking a split arm.

Pure: no I/O, no clock, no randomness. `gateway.settings.RouteSettings` calls `parse_when`
and `check_field` at load time so a bad rule is a config error; `gateway.routing.route`
calls `matches`, `field_value` and `pick_arm` per request.

Condition fields (all conditions of a rule must hold):

    model, mode, resolution, ratio      strings (mode / resolution / ratio must be known values)
    seconds                             the requested duration: an int, or "auto"
    audio                               true when the request asks for generated audio
    images, videos, audios, references  counts of reference media (reference mode; 0 otherwise)
    metadata.<key>                      the request's metadata value
    key, tenant                         the caller's key name and tenant
    header.<name>                       a request header (name case-insensitive)

A value is a scalar (equality) or a table of operators, all of which must hold:
`in = [...]`, `not = v`, `not_in = [...]`, `min = n` / `max = n` (inclusive, numeric
fields only), `exists = true|false`. A field the request doesn't have (no resolution
given, no such header) fails equality, `in`, `min` and `max`, and satisfies `not` and
`not_in`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgspec

from providers.base import MODES, GenerationRequest, ReferenceInput
from providers.capabilities import RATIOS, RESOLUTIONS

__all__ = [
    "FIELDS",
    "OPERATORS",
    "Condition",
    "RouteContext",
    "check_field",
    "field_value",
    "matches",
    "parse_when",
    "pick_arm",
]

Scalar = str | int | float | bool
Kind = Literal["str", "int", "bool", "seconds"]


class RouteContext(msgspec.Struct, frozen=True, kw_only=True):
    """Facts about a request that aren't in the `GenerationRequest`: who asked, and how."""

    key_name: str | None = None
    tenant: str | None = None
    headers: Mapping[str, str] = {}
    metadata: Mapping[str, str] = {}
    # Picks the arm of a split that has no sticky field (or whose sticky field is absent);
    # the caller passes something unique per request, such as the new video id.
    request_key: str = ""


def _reference_count(attr: str | None) -> Callable[[GenerationRequest[Any], RouteContext], int]:
    def count(request: GenerationRequest[Any], context: RouteContext) -> int:
        inp = request.input
        if not isinstance(inp, ReferenceInput):
            return 0
        return inp.total if attr is None else len(getattr(inp, attr))

    return count


# field -> (kind, getter). `metadata.*` and `header.*` are handled by prefix.
_GETTERS: dict[str, tuple[Kind, Callable[[GenerationRequest[Any], RouteContext], Any]]] = {
    "model": ("str", lambda r, c: r.model),
    "mode": ("str", lambda r, c: r.mode),
    "resolution": ("str", lambda r, c: r.resolution),
    "ratio": ("str", lambda r, c: r.ratio),
    "seconds": ("seconds", lambda r, c: r.seconds),
    "audio": ("bool", lambda r, c: bool(r.generate_audio)),
    "images": ("int", _reference_count("images")),
    "videos": ("int", _reference_count("videos")),
    "audios": ("int", _reference_count("audios")),
    "references": ("int", _reference_count(None)),
    "key": ("str", lambda r, c: c.key_name),
    "tenant": ("str", lambda r, c: c.tenant),
}
_PREFIXES = ("metadata.", "header.")
FIELDS: tuple[str, ...] = (*_GETTERS, "metadata.<key>", "header.<name>")
OPERATORS: tuple[str, ...] = ("in", "not", "not_in", "min", "max", "exists")

# Values a string field may take, so a typo ("1080", "keyframe") is a config error
# instead of a rule that silently never matches.
_KNOWN_VALUES: dict[str, tuple[str, ...]] = {"mode": MODES, "resolution": RESOLUTIONS, "ratio": RATIOS}


class Condition(msgspec.Struct, frozen=True):
    """One `when` entry: a normalized field path and the operators that must all hold."""

    field: str
    ops: tuple[tuple[str, Any], ...]  # (operator, operand); a bare scalar is ("eq", value)


# ---------------------------------------------------------------------------
# Parsing (load time)
# ---------------------------------------------------------------------------


def check_field(field: str) -> str:
    """The normalized field path (header names lowercased); ValueError if it isn't known."""
    for prefix in _PREFIXES:
        if field.startswith(prefix):
            rest = field[len(prefix) :]
            if not rest:
                raise ValueError(f"{field!r} needs a name after {prefix!r}")
            return prefix + rest.lower() if prefix == "header." else field
    if field not in _GETTERS:
        raise ValueError(f"unknown field {field!r} (known: {', '.join(FIELDS)})")
    return field


def parse_when(when: Mapping[str, Any]) -> tuple[Condition, ...]:
    """Parse a route's `when` table. ValueError messages start with `when.<field>`.

    TOML dotted keys (`when = { metadata.tier = "free" }`) arrive as a nested table under
    `metadata` / `header`; those are flattened to `metadata.tier`, the same as the quoted
    key `"metadata.tier"`.
    """
    conditions: list[Condition] = []
    for field, spec in _flatten(when):
        try:
            path = check_field(field)
        except ValueError as exc:
            raise ValueError(f"when.{field}: {exc}") from None
        try:
            conditions.append(Condition(path, _parse_ops(path, spec)))
        except ValueError as exc:
            raise ValueError(f"when.{field}: {exc}") from None
    return tuple(conditions)


def _flatten(when: Mapping[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for field, spec in when.items():
        if field in ("metadata", "header") and isinstance(spec, Mapping):
            out.extend((f"{field}.{name}", sub) for name, sub in spec.items())
        else:
            out.append((field, spec))
    return out


def _parse_ops(path: str, spec: Any) -> tuple[tuple[str, Any], ...]:
    kind, field = _kind(path), path.split(".", 1)[0]
    if not isinstance(spec, Mapping):
        return (("eq", _operand(kind, field, spec)),)
    if not spec:
        raise ValueError(f"empty operator table (operators: {', '.join(OPERATORS)})")
    ops: list[tuple[str, Any]] = []
    for op, operand in spec.items():
        if op in ("in", "not_in"):
            if not isinstance(operand, list) or not operand:
                raise ValueError(f"`{op}` takes a non-empty list")
            ops.append((op, frozenset(_operand(kind, field, v) for v in operand)))
        elif op == "not":
            ops.append((op, _operand(kind, field, operand)))
        elif op in ("min", "max"):
            if kind not in ("int", "seconds"):
                raise ValueError(f"`{op}` needs a numeric field; {path} is not one")
            if isinstance(operand, bool) or not isinstance(operand, (int, float)) or not math.isfinite(operand):
                raise ValueError(f"`{op}` takes a number, got {operand!r}")
            ops.append((op, operand))
        elif op == "exists":
            if not isinstance(operand, bool):
                raise ValueError(f"`exists` takes true or false, got {operand!r}")
            ops.append((op, operand))
        else:
            raise ValueError(f"unknown operator {op!r} (known: {', '.join(OPERATORS)})")
    bounds = dict(op for op in ops if op[0] in ("min", "max"))
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise ValueError(f"min {bounds['min']} is above max {bounds['max']}")
    return tuple(ops)


def _kind(path: str) -> Kind:
    if path.startswith(_PREFIXES):
        return "str"
    return _GETTERS[path][0]


def _operand(kind: Kind, field: str, value: Any) -> Scalar:
    """Check a value compared for (in)equality against the field's type."""
    if kind == "bool":
        ok = isinstance(value, bool)
        want = "true or false"
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        want = "a whole number >= 0"
    elif kind == "seconds":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or value == "auto"
        want = 'a whole number of seconds or "auto"'
    else:
        ok = isinstance(value, str)
        want = "a string"
    if not ok:
        raise ValueError(f"expected {want}, got {value!r}")
    known = _KNOWN_VALUES.get(field)
    if known is not None and value not in known:
        raise ValueError(f"{value!r} is not a known {field} (known: {', '.join(known)})")
    return value


# ---------------------------------------------------------------------------
# Matching (per request)
# ---------------------------------------------------------------------------


def field_value(path: str, request: GenerationRequest[Any], context: RouteContext) -> Any:
    """The request's value for a normalized field path; None when the request has none."""
    if path.startswith("metadata."):
        return context.metadata.get(path[len("metadata.") :])
    if path.startswith("header."):
        return _header(context.headers, path[len("header.") :])
    return _GETTERS[path][1](request, context)


def matches(conditions: tuple[Condition, ...], request: GenerationRequest[Any], context: RouteContext) -> bool:
    """True when every condition holds (an empty `when` matches every request)."""
    return all(_holds(op, operand, field_value(c.field, request, context)) for c in conditions for op, operand in c.ops)


def _holds(op: str, operand: Any, value: Any) -> bool:
    if op == "exists":
        return (value is not None) == operand
    if op == "eq":
        return value is not None and value == operand
    if op == "in":
        return value is not None and value in operand
    if op == "not":
        return value is None or value != operand
    if op == "not_in":
        return value is None or value not in operand
    if not isinstance(value, (int, float)) or isinstance(value, bool):  # None, "auto"
        return False
    return value >= operand if op == "min" else value <= operand


def _header(headers: Mapping[str, str], name: str) -> str | None:
    found = headers.get(name)
    if found is not None:
        return found
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


# ---------------------------------------------------------------------------
# Split arms
# ---------------------------------------------------------------------------


def pick_arm(rule: str, weights: Mapping[str, float], value: str) -> str:
    """The arm of a weighted split for `value`: weight-proportional and deterministic.

    The same (rule, value) gives the same arm in every process and after restarts (a
    SHA-256 of both, not Python's salted `hash`). Arms are walked in the mapping's order
    (the config's); a zero-weight arm is never chosen. `weights` must have a positive sum.
    """
    digest = hashlib.sha256(f"{rule}\x00{value}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights.values())
    chosen, cumulative = "", 0.0
    for arm, weight in weights.items():
        if weight <= 0:
            continue
        chosen, cumulative = arm, cumulative + weight
        if point < cumulative:
            return arm
    return chosen  # float rounding at the very top: the last positive arm
