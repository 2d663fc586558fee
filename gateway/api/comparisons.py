"""`/v1/comparisons`: one request fanned out to several providers, results side by side, and a person's vote."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from gateway.api.docs import CreateComparisonOperation, VoteOperation, errors
from gateway.auth import Caller
from gateway.comparisons import ComparisonObject, ComparisonService
from gateway.errors import PayloadTooLarge
from gateway.service import VideoService


class ComparisonsController(Controller):
    path = "/v1/comparisons"
    tags = ["comparisons"]

    @post(
        "/",
        operation_id="createComparison",
        summary="Create one video job per provider from the same request",
        status_code=200,
        operation_class=CreateComparisonOperation,
        responses=errors(400, 401, 403, 404, 409, 413, 422),
    )
    async def create(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ComparisonObject:
        limit = service.settings.security.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is {declared} bytes; the limit is {limit}")
        comparisons = ComparisonService(service)
        comparison = await comparisons.create(caller, await request.body(), idempotency_key=service.idempotency_key(request.headers))
        return await comparisons.view(comparison)

    @get("/{comparison_id:str}", operation_id="retrieveComparison", summary="Retrieve a comparison and its results", responses=errors(401, 404))
    async def retrieve(self, comparison_id: FromPath[str], caller: NamedDependency[Caller], service: NamedDependency[VideoService]) -> ComparisonObject:
        comparisons = ComparisonService(service)
        return await comparisons.view(await comparisons.get(caller, comparison_id))

    @post(
        "/{comparison_id:str}/vote",
        operation_id="voteComparison",
        summary="Record which provider's video was better, or a tie (the first vote stays)",
        status_code=200,
        operation_class=VoteOperation,
        responses=errors(400, 401, 404, 409, 422),
    )
    async def vote(
        self, comparison_id: FromPath[str], request: Request[Any, Any, Any], caller: NamedDependency[Caller], service: NamedDependency[VideoService]
    ) -> ComparisonObject:
        comparisons = ComparisonService(service)
        return await comparisons.view(await comparisons.vote(caller, comparison_id, await request.body()))
