"""The API document holds: schemathesis generates requests for every operation of a live
vidgate (the demo stack, real sockets) and runs every check on the answers.

The document is built from the same app factory at import time (schemathesis' lazy
fixture loader does not run under this pytest) and checked to be the one the live
stack serves, so what is tested is what `/schema/openapi.json` says.
"""

from __future__ import annotations

import httpx
import msgspec
import schemathesis
from litestar._openapi.plugin import OpenAPIPlugin
from schemathesis.config import SchemathesisConfig

from gateway.app import create_app
from gateway.cli import demo_settings
from tests.integration.conftest import Stack

# Statuses a schema-valid request may still get, where the schema can't say why:
# capability limits and media content (422), ids that don't exist (404), and the
# operations no configured provider offers, which refuse every request (400).
SCHEMA_CANT_SAY = {
    "createVideo": [200, 401, 403, 404, 409, 413, 422],
    "createComparison": [200, 401, 403, 404, 409, 413, 422],
    "uploadFile": [200, 401, 413, 422],
    **{op: [400, 401] for op in ("remixVideo", "editVideo", "extendVideo", "createCharacter", "retrieveCharacter")},
}

CONFIG = {
    "auth": {"openapi": {"bearer": {"bearer": "sk-demo"}}},  # the document's security scheme, so auth probes know what to remove
    "generation": {"max-examples": 300, "database": "none", "deterministic": True},
    "operations": [
        {"include-operation-id": op, "checks": {"positive_data_acceptance": {"expected-statuses": statuses}}} for op, statuses in SCHEMA_CANT_SAY.items()
    ],
}


def _document() -> dict:
    urls = {name: "http://127.0.0.1:9" for name in ("useapi", "powertokens", "modelark")}
    app = create_app(demo_settings(port=8000, urls=urls, data_dir="/nonexistent", job_seconds=1.0))
    # as JSON, the way it is served (frozenset defaults become lists)
    return msgspec.json.decode(msgspec.json.encode(app.plugins.get(OpenAPIPlugin).provide_openapi_schema()))


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict(CONFIG))


def test_the_live_stack_serves_this_document(stack: Stack) -> None:
    assert httpx.get(f"{stack.base}/schema/openapi.json").json() == DOCUMENT


@schema.parametrize()
def test_every_operation_answers_as_documented(case: schemathesis.Case, stack: Stack) -> None:
    case.call_and_validate(base_url=stack.base)
