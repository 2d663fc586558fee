"""ModelArk's error answers as the simulator gives them (MODELARK.md §6.2, §8).

`CODES` lists every code of the §8.2 table (and the refusals of §6.2) with its HTTP status,
`type` word and message, so the `/_sim/errors` switch can produce any of them. Messages
end in "Request ID: <id>" as the real ones do (§8.1), and `param` is the failing field or
"" (§8.1).
"""

from __future__ import annotations

import contextvars
import secrets
from typing import NamedTuple

import msgspec
from litestar import Response
from litestar.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("modelark_sim_request_id", default="")


class CodeSpec(NamedTuple):
    status: int
    type: str
    message: str


def _spec(status: int, message: str) -> CodeSpec:
    return CodeSpec(status, _TYPES[status], message)


_TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests", 500: "InternalServerError"}

CODES: dict[str, CodeSpec] = {
    "MissingParameter": _spec(400, "The request failed because it is missing one or multiple required parameters."),
    "InvalidParameter": _spec(400, "One or more parameters specified in the request are not valid."),
    "InvalidParameter.UnsupportedParameter": _spec(400, "The parameter is not supported by the specified endpoint."),
    "InvalidParameter.TaskTypeMismatch": _spec(400, "The task type does not match the given parameters."),
    "InvalidParameter.TaskTypeConstraint": _spec(400, "The parameters violate a constraint of the task type."),
    "InvalidEndpoint.ClosedEndpoint": _spec(400, "The specified endpoint is closed or temporarily unavailable."),
    "InputTextSensitiveContentDetected": _spec(400, "The request failed because the input text may contain sensitive information."),
    "InputTextSensitiveContentDetected.PolicyViolation": _spec(400, "The input text may contain copyrighted content."),
    "InputImageSensitiveContentDetected": _spec(400, "The request failed because the input image may contain sensitive information."),
    "InputImageSensitiveContentDetected.PolicyViolation": _spec(400, "The input image may violate the content policy."),
    "InputImageSensitiveContentDetected.PrivacyInformation": _spec(400, "The input image may contain real person."),
    "InputVideoSensitiveContentDetected": _spec(400, "The request failed because the input video may contain sensitive information."),
    "InputVideoSensitiveContentDetected.PolicyViolation": _spec(400, "The input video may violate the content policy."),
    "InputVideoSensitiveContentDetected.PrivacyInformation": _spec(400, "The input video may contain real person."),
    "InputAudioSensitiveContentDetected": _spec(400, "The request failed because the input audio may contain sensitive information."),
    "InputAudioSensitiveContentDetected.PolicyViolation": _spec(400, "The input audio may violate the content policy."),
    "OutputVideoSensitiveContentDetected": _spec(400, "The request failed because the output video may contain sensitive information."),
    "OutputVideoSensitiveContentDetected.PolicyViolation": _spec(400, "The output video may violate the content policy."),
    "OutputAudioSensitiveContentDetected": _spec(400, "The request failed because the output audio may contain sensitive information."),
    "OutputAudioSensitiveContentDetected.PolicyViolation": _spec(400, "The output audio may violate the content policy."),
    "SensitiveContentDetected": _spec(400, "The request failed because the input text may contain sensitive information."),
    "SensitiveContentDetected.SevereViolation": _spec(400, "The input text may contain severely violating content."),
    "SensitiveContentDetected.Violence": _spec(400, "The input text may contain violent content."),
    "AuthenticationError": _spec(401, "The API key in the request is missing or invalid."),
    "AccountOverdueError": _spec(403, "The request failed because your account has an overdue balance."),
    "AccessDenied": _spec(403, "The request failed because you do not have access to the requested resource."),
    "OperationDenied.ServiceNotOpen": _spec(403, "The service is not open for this account."),
    "OperationDenied.ServiceOverdue": _spec(403, "The service is suspended because of an overdue bill."),
    "OperationDenied.InvalidState": _spec(403, "The specified task is in invalid state."),
    "InvalidEndpoint.NotFound": _spec(404, "The model or endpoint does not exist or you do not have access to it."),
    "InvalidEndpointOrModel.NotFound": _spec(404, "The model or endpoint does not exist or you do not have access to it."),
    "ModelNotOpen": _spec(404, "Your account has not activated the model service."),
    "NotFound.TaskId": _spec(404, "The specified task is not found."),
    "ModelAccountRpmRateLimitExceeded": _spec(429, "The request has exceeded the RPM rate limit of the model for your account."),
    "RateLimitExceeded.EndpointRPMExceeded": _spec(429, "The request has exceeded the RPM rate limit of the endpoint."),
    "RateLimitExceeded.EndpointFlexTPMExceeded": _spec(429, "The request has exceeded the flex TPM limit of the endpoint."),
    "QuotaExceeded": _spec(429, "The request has exceeded the quota."),
    "QuotaExceeded.FreeTrial": _spec(429, "Your account has exhausted its free trial quota for the model."),
    "ServerOverloaded": _spec(429, "The service is currently unable to handle additional requests due to server overload."),
    "RequestBurstTooFast": _spec(429, "The request was rejected because the traffic increased too fast. Please ramp up slowly."),
    "SetLimitExceeded": _spec(429, "The request has reached the limit set in Safe Experience Mode; the service is paused."),
    "InflightBatchsizeExceeded": _spec(429, "The number of concurrent requests has exceeded the limit tied to your balance."),
    "AccountRateLimitExceeded": _spec(429, "The request has exceeded the rate limit of your account."),
    "APIAccountRpmRateLimitExceeded": _spec(429, "The request has exceeded the API RPM rate limit of your account."),
    "ModelAccountTpmRateLimitExceeded": _spec(429, "The request has exceeded the TPM rate limit of the model for your account."),
    "ModelAccountFlexTpmRateLimitExceeded": _spec(429, "The request has exceeded the flex TPM rate limit of the model for your account."),
    "InternalServiceError": _spec(500, "The service encountered an unexpected internal error."),
}


def wire_code(code: str) -> str:
    """The code as the upstream spells it: `QuotaExceeded.FreeTrial` is the simulator's own
    key for the second `QuotaExceeded` row of §8.2 (same code, different message)."""
    return "QuotaExceeded" if code == "QuotaExceeded.FreeTrial" else code


class ArkError(Exception):
    """An answer in ModelArk's envelope; raised anywhere in a handler."""

    def __init__(self, code: str, message: str | None = None, *, param: str = "", headers: dict[str, str] | None = None) -> None:
        spec = CODES[code]
        super().__init__(message or spec.message)
        self.code = wire_code(code)
        self.status = spec.status
        self.type = spec.type
        self.message = message or spec.message
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        """§8.1 / §12.6."""
        return {"error": {"code": self.code, "message": f"{self.message} Request ID: {request_id.get()}", "param": self.param, "type": self.type}}

    def response(self) -> Response[bytes]:
        return Response(msgspec.json.encode(self.body()), status_code=self.status, media_type="application/json", headers=self.headers)


def invalid(param: str, message: str) -> ArkError:
    return ArkError("InvalidParameter", message, param=param)


def missing(param: str) -> ArkError:
    return ArkError("MissingParameter", f"The request failed because it is missing the required parameter: {param}.", param=param)


class RequestIdMiddleware:
    """Gives each API request a random hex id (§1 [UNKNOWN] rule) that its error messages
    quote; `add_request_id` puts the same id in the `X-Request-Id` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = request_id.set(secrets.token_hex(16))
        try:
            await self.app(scope, receive, send)
        finally:
            request_id.reset(token)


async def add_request_id(message: Message, scope: Scope) -> None:
    """A `before_send` hook: `X-Request-Id` on every answer, Litestar's own 404s included
    (they never reach route middleware, so they get a fresh id)."""
    if message["type"] == "http.response.start":
        rid = request_id.get() or secrets.token_hex(16)
        message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
