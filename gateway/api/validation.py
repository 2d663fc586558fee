"""Litestar's parameter validation errors, said the way a caller can act on them.

Litestar reports a bad query, path or header parameter as a `ValidationException`
whose `extra` holds `{"key", "message", "source": ParamType.QUERY}`; printed as it is,
that leaks a Python repr. This names the parameter, quotes (a bounded slice of) what
was sent and says what would be valid, read off the handler's own annotation: a
`Literal` lists its values, a bounded int its range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from litestar import Request
from litestar.exceptions import ValidationException
from litestar.typing import FieldDefinition

from gateway.errors import ErrorBody

_SHOWN = 80  # characters of a bad value quoted back


def validation_error_body(request: Request[Any, Any, Any], exc: ValidationException) -> ErrorBody:
    problems = [p for p in exc.extra if isinstance(p, Mapping) and isinstance(p.get("key"), str)] if isinstance(exc.extra, list) else []
    if not problems:
        return ErrorBody(message=f"Invalid request: {exc.detail}", type="invalid_request_error", code="invalid_request")
    parameters = _parameters(request)
    sentences = [_sentence(request, p, parameters.get(p["key"])) for p in problems]
    return ErrorBody(message="; ".join(sentences), type="invalid_request_error", param=problems[0]["key"], code="invalid_parameter")


def _sentence(request: Request[Any, Any, Any], problem: Mapping[str, Any], field: FieldDefinition | None) -> str:
    key: str = problem["key"]
    source = getattr(problem.get("source"), "value", None) or "request"
    text = f"Invalid {source} parameter '{key}'"
    given = _given(request, source, key)
    if given is not None:
        text += f": {_quote(given)}"
    expected = expected_values(field) if field is not None else None
    if expected:
        return f"{text} (expected {expected})"
    message = problem.get("message")
    return f"{text} ({message})" if isinstance(message, str) and message else text


def expected_values(field: FieldDefinition) -> str | None:
    """What a parameter accepts, in words: `one of: a, b`, `an integer from 1 to 100`."""
    inner = [t for t in (field.inner_types if field.is_union else (field,)) if t.annotation is not type(None)]
    if len(inner) != 1:
        return None
    annotation = inner[0].annotation
    kwarg = field.kwarg_definition or inner[0].kwarg_definition  # `Annotated[float, QueryParameter(...)] | None` keeps it inside
    description = getattr(kwarg, "description", None)
    if get_origin(annotation) is Literal:
        words = "one of: " + ", ".join(str(v) for v in get_args(annotation))
    elif annotation is bool:
        words = "true or false"
    elif annotation is int:
        words = "an integer" + _bounds(kwarg)
    elif annotation is float:
        words = "a number" + _bounds(kwarg)
    elif annotation is str:
        words = "a string"
    else:
        return description
    return f"{words}: {description}" if description else words


def _bounds(kwarg: Any) -> str:
    low = getattr(kwarg, "ge", None)
    high = getattr(kwarg, "le", None)
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" of at least {low:g}"
    if high is not None:
        return f" of at most {high:g}"
    return ""


def _parameters(request: Request[Any, Any, Any]) -> Mapping[str, FieldDefinition]:
    handler = request.scope.get("route_handler")
    signature = getattr(handler, "parsed_fn_signature", None)
    parameters = getattr(signature, "parameters", None)
    return parameters if isinstance(parameters, Mapping) else {}


def _given(request: Request[Any, Any, Any], source: str, key: str) -> str | None:
    if source == "query":
        return request.query_params.get(key)
    if source == "header":
        return request.headers.get(key)
    if source == "path":
        value = request.path_params.get(key)
        return value if isinstance(value, str) else None
    return None


def _quote(value: str) -> str:
    shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
    return f"'{shown}'"
