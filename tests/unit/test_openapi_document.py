"""What the API document says (issue 12): request bodies, error envelopes, SSE, examples."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from litestar._openapi.plugin import OpenAPIPlugin

from gateway.app import create_app
from gateway.cli import demo_settings

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    urls = {name: "http://127.0.0.1:9" for name in ("useapi", "powertokens", "modelark")}
    app = create_app(demo_settings(port=8000, urls=urls, data_dir="/nonexistent", job_seconds=1.0))
    document: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(app.plugins.get(OpenAPIPlugin).provide_openapi_schema()))
    return document


def operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {op["operationId"]: op for item in doc["paths"].values() for method, op in item.items() if method in METHODS}


def test_every_error_response_is_the_openai_envelope(doc: dict[str, Any]) -> None:
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    seen = set()
    for op_id, op in operations(doc).items():
        for status, response in op["responses"].items():
            if int(status) >= 400 and op_id != "readyz":
                assert response["content"]["application/json"]["schema"] == envelope, (op_id, status)
                seen.add(int(status))
    assert seen >= {400, 401, 403, 404, 409, 413, 422, 500}
    body = doc["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"message", "type", "param", "code"}


def test_create_takes_json_with_an_example_per_input_mode_and_the_sdks_multipart(doc: dict[str, Any]) -> None:
    create = operations(doc)["createVideo"]
    content = create["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    assert set(content["application/json"]["examples"]) == {"text", "first_frame", "first_last_frame", "keyframes", "reference"}
    properties = content["application/json"]["schema"]["properties"]
    assert {"model", "prompt", "seconds", "input_reference", "first_frame", "last_frame", "keyframes", "references", "webhook_url"} <= set(properties)
    assert "$ref" not in msgspec.json.encode(content["application/json"]["schema"]).decode()  # self-contained
    assert content["multipart/form-data"]["schema"]["properties"]["input_reference"]["format"] == "binary"
    assert {p["name"] for p in create["parameters"]} == {"Idempotency-Key"}
    assert set(create["responses"]) >= {"200", "400", "401", "403", "404", "409", "413", "422"}


def test_files_are_multipart_and_comparisons_json(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    upload = ops["uploadFile"]["requestBody"]["content"]
    assert upload["multipart/form-data"]["schema"]["required"] == ["file"]
    comparison = ops["createComparison"]["requestBody"]["content"]["application/json"]
    assert "provider" not in comparison["schema"]["properties"]["request"]["properties"]
    assert comparison["schema"]["required"] == ["request"]


def test_events_are_a_text_event_stream_and_content_is_binary(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    assert set(ops["videoEvents"]["responses"]["200"]["content"]) == {"text/event-stream"}
    assert set(ops["downloadVideoContent"]["responses"]["200"]["content"]) == {"video/mp4", "image/png", "image/jpeg", "image/webp"}
    variant = next(p for p in ops["downloadVideoContent"]["parameters"] if p["name"] == "variant")
    assert variant["schema"]["enum"] == ["video", "thumbnail", "last_frame"]


def test_every_operation_but_the_probes_needs_the_bearer_key(doc: dict[str, Any]) -> None:
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer", "description": "A vidgate API key"}
    public = {op_id for op_id, op in operations(doc).items() if op.get("security") == []}
    assert public == {"healthz", "readyz"}


def test_the_document_lists_every_public_endpoint(doc: dict[str, Any]) -> None:
    assert set(operations(doc)) >= {
        "createVideo",
        "listVideos",
        "retrieveVideo",
        "deleteVideo",
        "downloadVideoContent",
        "cancelVideo",
        "videoEvents",
        "remixVideo",
        "editVideo",
        "extendVideo",
        "createCharacter",
        "retrieveCharacter",
        "uploadFile",
        "retrieveFile",
        "listModels",
        "listProviders",
        "createComparison",
        "retrieveComparison",
        "getStats",
        "listVideoDeliveries",
        "redeliverWebhook",
        "healthz",
        "readyz",
        "metrics",
    }


def test_video_ids_are_documented_as_the_ids_vidgate_makes_so_no_static_path_reads_as_one(doc: dict[str, Any]) -> None:
    """`/v1/videos/characters/cancel` is the characters route (GET only), so a schema-valid
    request must never name `characters` (or `edits`, `extensions`) as a video."""
    import re

    from gateway.service import new_video_id

    documented = [
        param["schema"]["pattern"]
        for path, item in doc["paths"].items()
        if "{video_id}" in path and path.startswith("/v1/videos")
        for method, op in item.items()
        if method in METHODS
        for param in op.get("parameters", [])
        if param["name"] == "video_id"
    ]
    assert len(documented) >= 6 and len(set(documented)) == 1
    pattern = re.compile(documented[0])
    assert all(pattern.fullmatch(new_video_id()) for _ in range(50))
    assert not any(pattern.fullmatch(word) for word in ("characters", "edits", "extensions"))


def test_the_document_is_the_same_in_every_process() -> None:
    """No part of it may follow hash order (a frozenset default did): clients that diff or
    cache it, and schema-driven tests, would see a different document after each restart."""
    import os
    import subprocess
    import sys

    script = (
        "import msgspec; from litestar._openapi.plugin import OpenAPIPlugin;"
        "from gateway.app import create_app; from gateway.cli import demo_settings;"
        "urls = {n: 'http://127.0.0.1:9' for n in ('useapi', 'powertokens', 'modelark')};"
        "app = create_app(demo_settings(port=8000, urls=urls, data_dir='/nonexistent', job_seconds=1.0));"
        "print(msgspec.json.encode(app.plugins.get(OpenAPIPlugin).provide_openapi_schema()).decode())"
    )
    documents = {
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(documents) == 1
