"""The API's one error shape and how refusals map to status codes.

Every error is ``{"error": {"code", "message", "field"}}``: ``message`` is the sentence the
CLI prints for the same refusal, ``field`` the input it is about (or null). Status codes:

- 401 ``unauthenticated`` — no key, or a key that is unknown, revoked or of an inactive user
  (one answer for all, so a caller learns nothing about other keys);
- 404 ``not_found`` — no such object *for the caller*: another user's object is reported
  exactly as a missing one;
- 409 ``over_quota`` (the tier allows no more) and ``conflict`` (a state that forbids the
  change: a channel in use, a once alert already fired);
- 413 ``body_too_large``; 422 ``invalid`` (with ``field``), ``unknown_coin``;
- 429 ``rate_limited`` with ``Retry-After``; 503 ``unavailable`` (a dependency is down).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from domain.alerts.manage import NotFound, OverQuota, Refused, UnknownCoin


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
        self.headers = dict(headers or {})


def from_refusal(exc: Refused) -> ApiError:
    """The answer to a domain refusal (see module)."""
    message = str(exc)
    if isinstance(exc, NotFound):
        return ApiError(404, "not_found", message)
    if isinstance(exc, OverQuota):
        return ApiError(409, "over_quota", message)
    if isinstance(exc, UnknownCoin):
        return ApiError(422, "unknown_coin", message, exc.field)
    if exc.field is not None:
        return ApiError(422, "invalid", message, exc.field)
    return ApiError(409, "conflict", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} does not exist")


# The error responses every operation may give, for the OpenAPI document.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (401, "No key, or the key is unknown, revoked or its user inactive."),
        (413, "The body is larger than API_MAX_BODY_BYTES."),
        (422, "Invalid input: the field and the reason."),
        (429, "The key's requests per minute are used up: see Retry-After."),
        (503, "A dependency (database, Redis) is unavailable."),
    )
}
OBJECT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **COMMON_RESPONSES,
    404: {"model": ErrorBody, "description": "No such object for this key's user."},
    409: {"model": ErrorBody, "description": "Over the tier's quota, or a conflicting state."},
}
