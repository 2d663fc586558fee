"""What a failed attempt means for its job, per error class (SPEC 4).

Retrying the same provider happens inside one attempt (`gateway.http`:
backoff, Retry-After, bounded). After that, an attempt's error either moves the
job to the next candidate provider — also after the upstream had accepted it,
under the same video id — or ends the job.
"""

from __future__ import annotations

import enum

from providers.base import ErrorClass


class Action(str, enum.Enum):
    NEXT = "next"  # try the next candidate provider
    FAIL = "fail"  # end the job: another provider would refuse it too


DEFAULT_ACTIONS: dict[ErrorClass, Action] = {
    ErrorClass.INVALID_REQUEST: Action.FAIL,
    ErrorClass.CONTENT_REJECTED: Action.FAIL,
    ErrorClass.AUTH: Action.NEXT,  # this provider's credentials, not the request
    ErrorClass.PAYMENT: Action.NEXT,
    ErrorClass.SESSION_EXPIRED: Action.NEXT,
    ErrorClass.CAPACITY: Action.NEXT,
    ErrorClass.RATE_LIMIT: Action.NEXT,
    ErrorClass.UPSTREAM_UNAVAILABLE: Action.NEXT,
    ErrorClass.TIMEOUT: Action.NEXT,
    ErrorClass.GENERATION_FAILED: Action.NEXT,
    ErrorClass.NOT_FOUND: Action.NEXT,  # the upstream lost the job
}


def action_for(error_class: ErrorClass, overrides: dict[ErrorClass, Action] | None = None) -> Action:
    if overrides and error_class in overrides:
        return overrides[error_class]
    return DEFAULT_ACTIONS[error_class]
