"""``/v1/notifications``: the caller's outbox, newest first, by status and time."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from models.repositories import NotificationRepository
from workers.api.auth import Caller, subscriber
from workers.api.errors import COMMON_RESPONSES
from workers.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode, page_of
from workers.api.schemas import NotificationOut
from workers.api.services import Services, services_of

router = APIRouter(prefix="/v1/notifications", tags=["notifications"], responses=COMMON_RESPONSES)
Svc = Annotated[Services, Depends(services_of)]
Me = Annotated[Caller, Depends(subscriber)]
# Epoch ms from 1970 to the year 9999: what a datetime holds.
EpochMs = Annotated[int, Query(ge=0, le=253_402_300_799_999)]


def _at(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@router.get("")
def list_notifications(
    me: Me,
    services: Svc,
    status: Literal["pending", "sent", "failed", "suppressed"] | None = None,
    since: EpochMs | None = None,
    until: EpochMs | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[NotificationOut]:
    """Newest first; `since` (inclusive) and `until` (exclusive) are epoch ms of creation."""
    with services.unit_of_work() as session:
        rows = NotificationRepository(session).page_for_user(
            me.user_id, status=status, since=_at(since), until=_at(until),
            before=decode(cursor), limit=limit + 1,
        )  # fmt: skip
        return page_of(rows, limit, NotificationOut.of)  # type: ignore[arg-type]
