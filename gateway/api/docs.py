"""The API document (`/schema/openapi.json`) and its docs UI, usable offline.

Litestar builds the document from the controllers; this module adds what it can't see:

- the request bodies the controllers read themselves (create: JSON and the SDK's
  multipart form; files: multipart; comparisons: JSON), from the same msgspec structs
  that parse them, with an example per input mode;
- every error status in OpenAI's envelope (`errors(...)`), replacing Litestar's own
  400 schema (the app answers every error in the envelope, `gateway.app._handle_error`);
- the server-sent events (`text/event-stream`) and the content download's media types;
- bearer authentication, and none for the health probes.

The docs UI is Swagger UI from the `swagger-ui-bundle-v2` package (its JS and CSS ship
in the wheel, Apache-2.0 licence beside them), served under `/schema/assets/`; the page
names no other host, so it renders with the network off.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, cast

import msgspec
from litestar import Request, Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import (
    Components,
    Encoding,
    Example,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import PathParameter
from litestar.static_files import create_static_files_router

from gateway.comparisons import ComparisonRequest
from gateway.errors import ErrorBody, ErrorEnvelope
from gateway.schema import CreateVideoBody
from gateway.service import MAX_IDEMPOTENCY_KEY

VIDEO_ID_PATTERN = r"^video_[0-9a-f]{48}$"
# Documented, not enforced: an id of any other form is simply not found (404). The pattern
# also tells clients (and schema-driven tests) that `characters`, `edits` and `extensions`,
# the static paths beside `/v1/videos/{video_id}`, are never video ids.
VideoId = Annotated[str, PathParameter(description="A video's id: `video_` and 48 hex digits.", schema_extra={"pattern": VIDEO_ID_PATTERN})]

API_VERSION = "0.1.0"
SCHEMA_PATH = "/schema"
ASSETS_PATH = "/schema/assets"
SWAGGER_UI_VERSION = "5.31.0"

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

STATUS_TEXT: dict[int, str] = {
    400: "Malformed request: not JSON or multipart, bad UTF-8, an invalid query or path parameter (the message names it and "
    "lists the valid values), or an operation no configured provider offers (`unsupported_operation`).",
    401: "Missing or unknown API key (`Authorization: Bearer …`).",
    403: "The key may not do this: pin that provider, read another tenant's stats, or read /metrics without `admin`.",
    404: "No such object for this key's tenant (another tenant's objects are 404 too), or no content yet.",
    409: "The `Idempotency-Key` was used with a different body, or the object's state forbids the change.",
    413: "The request body or an uploaded file is over the configured limit.",
    422: "Understood but not servable as given: a field is invalid, or no configured provider can serve the request "
    "(the message names the field and each provider's reason). Nothing is clamped or dropped.",
    429: "Too many requests. Reserved: vidgate sets no request rate limit of its own today (an upstream's 429 is retried, then failed over, on the job).",
    500: "Internal error (logged with the request id sent back in `X-Request-ID`).",
    502: "An upstream failed in a way vidgate can't hide. Reserved: today an upstream's failure shows on the video's "
    "`error` and `attempts`, not as the status of the call.",
    503: "Not ready (`/readyz`): the store does not answer, or no provider is configured.",
}

_ERROR_EXAMPLE = ErrorEnvelope(
    ErrorBody(
        message="Invalid query parameter 'variant': 'spritesheet' (expected one of: video, thumbnail, last_frame)",
        type="invalid_request_error",
        param="variant",
        code="invalid_parameter",
    )
)


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """Response specs for these error statuses, each in OpenAI's envelope (always with 400 and 500:
    any request may be malformed, and Litestar declares its own 400 otherwise)."""
    return {
        status: ResponseSpec(data_container=ErrorEnvelope, generate_examples=False, description=STATUS_TEXT[status]) for status in sorted({*statuses, 400, 500})
    }


# ---------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------


def raw(schema: dict[str, Any]) -> Schema:
    """A JSON Schema dict where Litestar expects a `Schema`: its serializer copies nested
    dicts as they are (`BaseSchemaObject.to_schema`), so msgspec's schemas pass through."""
    return cast(Schema, schema)


def json_schema(tp: Any) -> dict[str, Any]:
    """msgspec's JSON Schema for `tp`, with its definitions inlined (a request body must stand alone)."""
    schema = msgspec.json.schema(tp)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


_FIELD_DOCS = {
    "model": "Logical model (GET /v1/models); default from the config.",
    "prompt": "In reference mode it may name @image1..9, @video1..3, @audio1..3.",
    "seconds": 'A duration the model supports, as an integer or a string ("5"), or "auto" where the upstream can choose.',
    "duration": "Alias of `seconds`.",
    "size": 'OpenAI\'s "1280x720" form: an alternative to `ratio` + `resolution`.',
    "input_reference": "OpenAI's image input: the first frame.",
    "first_frame": "A medium: an https or data: URL, {url}, {image_url} or {file_id} (POST /v1/files).",
    "last_frame": "A medium, as `first_frame`; with `first_frame` (or `input_reference`) it makes a first_last_frame job.",
    "keyframes": "2–10 {image, prompt?, seconds?}: a keyframes job.",
    "references": "{images: [≤9], videos: [≤3], audios: [≤3]}, ≤12 in all: a reference job.",
    "provider": "Pin one provider (if the key may).",
    "metadata": "Stored with the job; routing rules and sticky splits can read it.",
    "webhook_url": "Receives the signed video.completed / video.failed / video.cancelled event.",
    "routing": "{order?: [providers], allow_fallbacks?: bool}.",
}


def _create_schema() -> dict[str, Any]:
    schema = json_schema(CreateVideoBody)
    for name, text in _FIELD_DOCS.items():
        if name in schema.get("properties", {}):
            schema["properties"][name]["description"] = text
    schema["description"] = (
        "The mode is inferred from the inputs: prompt only = text; input_reference or first_frame = first_frame; "
        "plus last_frame = first_last_frame; keyframes; references. Inputs that can't be combined, or a value the model "
        "lacks, are a 422 naming the field."
    )
    return schema


_IMAGE = {"file_id": "file_0123456789abcdef"}  # from POST /v1/files
_CREATE_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "text": ("Text to video", {"model": "seedance-2.0", "prompt": "A paper boat on a rainy street", "seconds": 5, "ratio": "16:9"}),
    "first_frame": (
        "First frame (OpenAI's input_reference)",
        {"model": "seedance-2.0", "prompt": "The camera pushes in slowly", "input_reference": _IMAGE, "seconds": 5},
    ),
    "first_last_frame": (
        "First and last frame",
        {"model": "seedance-2.0", "prompt": "Morph between the two frames", "first_frame": _IMAGE, "last_frame": {"file_id": "file_fedcba9876543210"}},
    ),
    "keyframes": (
        "Keyframes",
        {
            "model": "seedance-1.0-mini",
            "keyframes": [{"image": _IMAGE, "prompt": "a calm sea", "seconds": 5}, {"image": {"url": "https://example.com/storm.png"}, "prompt": "a storm"}],
        },
    ),
    "reference": (
        "Omni reference",
        {
            "model": "seedance-2.0",
            "prompt": "@image1 walks toward the camera while @audio1 plays",
            "references": {"images": [_IMAGE], "audios": [{"file_id": "file_00aa11bb22cc33dd"}]},
            "seconds": 5,
            "metadata": {"user": "u-42"},
        },
    ),
}

_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "What the openai SDK sends: every scalar a string, nested keys in brackets (`input_reference[image_url]`, "
        "`first_frame[file_id]`, `references[images][]`, `metadata[user]`), or `keyframes` / `references` / `metadata` / "
        "`routing` as a JSON string. A file part is stored as an upload (as POST /v1/files) and used in its place."
    ),
    "properties": {
        "model": {"type": "string"},
        "prompt": {"type": "string", "maxLength": 5000},
        "seconds": {"type": "string", "description": _FIELD_DOCS["seconds"]},
        "size": {"type": "string"},
        "ratio": {"type": "string", "enum": ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "adaptive"]},
        "resolution": {"type": "string", "enum": ["480p", "720p", "1080p", "4k"]},
        "input_reference": {"type": "string", "format": "binary", "description": "The first frame, as a file."},
        "first_frame": {"type": "string", "format": "binary"},
        "last_frame": {"type": "string", "format": "binary"},
        "keyframes": {"type": "string", "description": "JSON: a list of {image, prompt?, seconds?}"},
        "references": {"type": "string", "description": "JSON: {images, videos, audios}"},
        "provider": {"type": "string"},
        "webhook_url": {"type": "string"},
    },
    "additionalProperties": {"type": "string"},
}
_FORM_ENCODING = {name: Encoding(content_type="image/png, image/jpeg, image/webp") for name in ("input_reference", "first_frame", "last_frame")}


def _examples(items: dict[str, tuple[str, Any]]) -> dict[str, Example | Reference]:
    return {name: Example(summary=summary, value=value) for name, (summary, value) in items.items()}


def _idempotency_key() -> Parameter:
    return Parameter(
        name="Idempotency-Key",
        param_in="header",
        required=False,
        description="The same key with the same body returns the same object and never starts a second paid job; another body is a 409.",
        schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_IDEMPOTENCY_KEY, pattern="^[ -~]+$"),
    )


@dataclass
class CreateVideoOperation(Operation):
    """`POST /v1/videos`: JSON or the SDK's multipart form."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(schema=raw(_create_schema()), examples=_examples(_CREATE_EXAMPLES)),
                "multipart/form-data": OpenAPIMediaType(
                    schema=raw(_FORM_SCHEMA),
                    encoding=_FORM_ENCODING,
                    examples={
                        "sdk_text": Example(
                            summary="Text to video, as the SDK sends it", value={"model": "seedance-2.0", "prompt": "A lighthouse at dawn", "seconds": "5"}
                        )
                    },
                ),
            },
        )
        self.parameters = [*(self.parameters or []), _idempotency_key()]


@dataclass
class UploadFileOperation(Operation):
    """`POST /v1/files`: one multipart file part."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "multipart/form-data": OpenAPIMediaType(
                    schema=raw(
                        {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "An image (PNG, JPEG, WebP, GIF), video (MP4) or audio (WAV, MP3).",
                                },
                                # a form field is text whatever it holds, and any text is kept as the purpose
                                "purpose": {"description": "Free text kept with the file (default video_input).", "default": "video_input"},
                            },
                        }
                    ),
                )
            },
        )


def _comparison_schema() -> dict[str, Any]:
    schema = json_schema(ComparisonRequest)
    request = _create_schema()
    request["properties"] = {k: v for k, v in request["properties"].items() if k != "provider"}
    request["description"] = "The body of POST /v1/videos, without `provider`."
    schema["properties"]["request"] = request
    return schema


@dataclass
class CreateComparisonOperation(Operation):
    """`POST /v1/comparisons`: one create body, fanned out."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(
                    schema=raw(_comparison_schema()),
                    examples=_examples(
                        {
                            "all": ("Every provider that can serve it", {"request": _CREATE_EXAMPLES["text"][1]}),
                            "two": ("Two providers, side by side", {"request": _CREATE_EXAMPLES["text"][1], "providers": ["provider-a", "provider-b"]}),
                        }
                    ),
                )
            },
        )
        self.parameters = [*(self.parameters or []), _idempotency_key()]


# A vote names a winner or says it is a tie, never both (VoteRequest's own check).
_VOTE_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {
            "type": "object",
            "properties": {"winner": {"type": "string", "minLength": 1, "description": "the provider whose video was better"}},
            "required": ["winner"],
            "additionalProperties": False,
        },
        {"type": "object", "properties": {"tie": {"const": True}}, "required": ["tie"], "additionalProperties": False},
    ]
}


@dataclass
class VoteOperation(Operation):
    """`POST /v1/comparisons/{id}/vote`: the better video's provider, or a tie."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(
                    schema=raw(_VOTE_SCHEMA),
                    examples=_examples({"winner": ("One video was better", {"winner": "provider-a"}), "tie": ("Neither was better", {"tie": True})}),
                )
            },
        )


_BINARY = {"type": "string", "format": "binary"}


@dataclass
class ContentOperation(Operation):
    """`GET /v1/videos/{id}/content`: bytes, of whichever type the variant is."""

    def __post_init__(self) -> None:
        responses = dict(self.responses or {})
        responses["200"] = OpenAPIResponse(
            description="The bytes, streamed: an MP4 for `video`, an image for `thumbnail` and `last_frame`.",
            content={t: OpenAPIMediaType(schema=raw(_BINARY)) for t in ("video/mp4", "image/png", "image/jpeg", "image/webp")},
        )
        self.responses = responses


_SSE_TEXT = (
    "One event per status change until the video ends: `event: video.<status>` "
    "(queued, in_progress, completed, failed, cancelled), `id: <video id>:<version>`, and `data:` the video object as JSON. "
    "The first event is the video as it is now."
)


@dataclass
class EventsOperation(Operation):
    """`GET /v1/videos/{id}/events`: server-sent events."""

    def __post_init__(self) -> None:
        responses = dict(self.responses or {})
        responses["200"] = OpenAPIResponse(
            description=_SSE_TEXT,
            content={
                "text/event-stream": OpenAPIMediaType(
                    schema=raw({"type": "string"}),
                    example='event: video.in_progress\nid: video_1f…:3\ndata: {"id": "video_1f…", "object": "video", "status": "in_progress", …}\n\n',
                )
            },
        )
        self.responses = responses


@dataclass
class PublicOperation(Operation):
    """An operation that needs no key (health probes)."""

    def __post_init__(self) -> None:
        self.security = []


# ---------------------------------------------------------------------------
# The document and its UI
# ---------------------------------------------------------------------------

_DESCRIPTION = """One OpenAI-Videos-compatible endpoint in front of several video upstreams.

Authenticate with `Authorization: Bearer <key>`. Every error is OpenAI's envelope
`{"error": {"message", "type", "param", "code"}}`:

| status | meaning |
|---|---|
""" + "\n".join(f"| {status} | {text} |" for status, text in STATUS_TEXT.items())


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="vidgate",
        version=API_VERSION,
        description=_DESCRIPTION,
        path=SCHEMA_PATH,
        render_plugins=[OfflineSwaggerUI()],
        components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", description="A vidgate API key")}),
        security=[{"bearer": []}],
        use_handler_docstrings=False,
    )


def swagger_ui_dir() -> Path:
    """The Swagger UI distribution shipped by the `swagger-ui-bundle-v2` wheel."""
    return Path(str(resources.files("swagger_ui_bundle"))) / "vendor" / f"swagger-ui-{SWAGGER_UI_VERSION}"


def docs_assets_router() -> Router:
    """Swagger UI's files, from the installed package, at `/schema/assets/` (cached for a day)."""
    return create_static_files_router(
        path=ASSETS_PATH,
        directories=[swagger_ui_dir()],
        include_in_schema=False,
        cache_control=None,
        name="docs-assets",
        opt={"log_path_template": True},
    )


class OfflineSwaggerUI(OpenAPIRenderPlugin):
    """Swagger UI from `/schema/assets/`: no CDN, no validator badge, no favicon from elsewhere."""

    def __init__(self) -> None:
        super().__init__(path=["/swagger"], favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} API</title>
  {self.favicon}
  <link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
  {self.style}
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
  <script src="{ASSETS_PATH}/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{SCHEMA_PATH}/openapi.json",
      dom_id: "#swagger-ui",
      validatorUrl: null,
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      plugins: [SwaggerUIBundle.plugins.DownloadUrl],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
""".encode()
