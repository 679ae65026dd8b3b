"""``/v1/admin``: operators manage subscribers and their keys under ``API_ADMIN_KEY``.

Without that setting these routes answer 404, as any unknown route does. Not rate limited
per tier (operators are few and hold the one admin key); failures are counted like
subscribers' (``hyperwatch_api_auth_failures_total``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from domain.access.api_keys import KeyRefused, issue_key
from domain.alerts.manage import MAX_ID, create_user
from models.repositories import ApiKeyRepository, UserRepository
from models.user import TIERS, User
from runtime.clock import utc_now
from workers.api.auth import operator
from workers.api.errors import OBJECT_RESPONSES, ApiError, not_found
from workers.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode, page_of
from workers.api.schemas import KeyIn, KeyIssued, KeyOut, UserIn, UserOut, UserPatch
from workers.api.services import Services, services_of

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses=OBJECT_RESPONSES,
    dependencies=[Depends(operator)],
)
Svc = Annotated[Services, Depends(services_of)]


def _tier(tier: str) -> str:
    if tier not in TIERS:
        raise ApiError(
            422, "invalid", f"tier must be one of {', '.join(TIERS)}, got {tier!r}", "tier"
        )
    return tier


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    if user is None:
        raise not_found(f"user {user_id}")
    return user


@router.post("/users", status_code=201)
def add_user(body: UserIn, services: Svc) -> UserOut:
    """Add a subscriber (the email checks of `hyperwatch users add`)."""
    tier = _tier(body.tier)
    # A concurrent add of the same email wins the unique index: the same refusal.
    taken = f"user {body.email.strip().lower()} already exists"
    with services.unit_of_work(conflict=taken) as session:
        return UserOut.of(create_user(session, body.email, tier))


@router.get("/users")
def list_users(
    services: Svc,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[UserOut]:
    with services.unit_of_work() as session:
        rows = UserRepository(session).page(None, after=decode(cursor), limit=limit + 1)
        return page_of(rows, limit, UserOut.of)  # type: ignore[arg-type]


@router.patch("/users/{user_id}")
def update_user(user_id: int, body: UserPatch, services: Svc) -> UserOut:
    """Set a subscriber's tier and/or whether they are active (an inactive user's keys
    authenticate nothing)."""
    with services.unit_of_work() as session:
        user = _user(session, user_id)
        if body.tier is not None:
            UserRepository(session).set_tier(user.id, _tier(body.tier))
        if body.active is not None:
            UserRepository(session).update(user.id, active=body.active)
        return UserOut.of(user)


@router.post("/users/{user_id}/keys", status_code=201)
def issue(user_id: int, body: KeyIn, services: Svc) -> KeyIssued:
    """Issue a key for the subscriber. The key is in this answer only."""
    with services.unit_of_work() as session:
        try:
            issued = issue_key(session, _user(session, user_id), body.name)
        except KeyRefused as exc:
            raise ApiError(422, "invalid", str(exc), "name") from None
        return KeyIssued(**KeyOut.of(issued.row).model_dump(), key=issued.plaintext)


@router.get("/users/{user_id}/keys")
def list_keys(user_id: int, services: Svc) -> list[KeyOut]:
    """Every key of the subscriber, revoked ones included (prefixes only)."""
    with services.unit_of_work() as session:
        return [KeyOut.of(k) for k in ApiKeyRepository(session).of_user(_user(session, user_id).id)]


@router.delete("/keys/{key_id}")
def revoke(key_id: int, services: Svc) -> KeyOut:
    """Revoke a key: from this answer on it authenticates nothing, in every API process.
    Idempotent."""
    with services.unit_of_work() as session:
        repository = ApiKeyRepository(session)
        key = repository.get(key_id) if 0 < key_id <= MAX_ID else None
        if key is None:
            raise not_found(f"key {key_id}")
        repository.revoke(key.id, utc_now(services.clock))
        session.refresh(key)
        return KeyOut.of(key)
