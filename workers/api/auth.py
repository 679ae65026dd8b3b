"""Who is calling: a subscriber's key (``Authorization: Bearer hw_…``) or the operators'
admin key; and the caller's rate limit.

A subscriber's request is authenticated against the database on every request (a
revoked key fails from the revocation's commit on) and then counted against its tier's
requests per minute (``runtime.rate_limit``, shared by every API process). Keys never
reach logs, metrics or Sentry: failures are counted by reason only, and the key is read
from the header only.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from domain.access.api_keys import authenticate
from runtime.clock import utc_now
from runtime.metrics import API_AUTH_FAILURES, API_RATE_LIMITED
from runtime.rate_limit import Decision, LimiterUnavailable
from workers.api.errors import ApiError
from workers.api.services import Services, services_of

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    user_id: int
    email: str
    tier: str
    key_id: int


def bearer(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _refuse(services: Services, reason: str) -> ApiError:
    services.metrics.counter(API_AUTH_FAILURES).labels(reason).inc()
    message = (
        "an API key is required: Authorization: Bearer <key>"
        if reason == "missing"
        else "the API key is not valid (unknown, revoked, or its user is inactive)"
    )
    return ApiError(401, "unauthenticated", message, headers=_CHALLENGE)


def rate_headers(decision: Decision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_s),
    }


def subscriber(
    request: Request, response: Response, services: Annotated[Services, Depends(services_of)]
) -> Caller:
    """The calling subscriber, counted against their rate limit (401 / 429 / 503)."""
    key = bearer(request)
    if key is None:
        raise _refuse(services, "missing")
    with services.unit_of_work() as session:
        found = authenticate(session, key, utc_now(services.clock))
        if found is None:
            raise _refuse(services, "invalid")
        row, user = found
        caller = Caller(user_id=user.id, email=user.email, tier=user.tier, key_id=row.id)
    limit = services.settings.tier_quota(caller.tier).api_requests_per_minute  # type: ignore[arg-type]
    try:
        decision = services.limiter.take(caller.key_id, limit)
    except LimiterUnavailable as exc:
        raise ApiError(503, "unavailable", f"{exc}; retry") from None
    if not decision.allowed:
        services.metrics.counter(API_RATE_LIMITED).labels(caller.tier).inc()
        raise ApiError(
            429,
            "rate_limited",
            f"this key's {limit} requests a minute ({caller.tier} tier) are used up; "
            f"retry in {decision.reset_s} s",
            headers={"Retry-After": str(decision.reset_s), **rate_headers(decision)},
        )
    response.headers.update(rate_headers(decision))
    return caller


def operator(request: Request, services: Annotated[Services, Depends(services_of)]) -> None:
    """The operators' admin key (``API_ADMIN_KEY``), compared in constant time. Without
    the setting no admin route exists (404)."""
    expected = services.settings.api_admin_key
    if expected is None:
        raise ApiError(404, "not_found", "no such route (API_ADMIN_KEY is not set)")
    key = bearer(request)
    if key is None:
        raise _refuse(services, "missing")
    if not hmac.compare_digest(
        key.encode("utf-8", "surrogatepass"), expected.get_secret_value().encode()
    ):
        raise _refuse(services, "invalid")
