"""``/v1/me``: the caller's tier, quotas and usage, and the key in use."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends

from domain.alerts.tiers import HOUR
from models.repositories import (
    AlertRepository,
    ApiKeyRepository,
    NotificationRepository,
    TrackedWalletRepository,
)
from runtime.clock import utc_now
from workers.api.auth import Caller, subscriber
from workers.api.errors import COMMON_RESPONSES
from workers.api.schemas import Account, KeyOut, Quotas, Usage
from workers.api.services import Services, services_of

router = APIRouter(prefix="/v1", tags=["account"], responses=COMMON_RESPONSES)


@router.get("/me")
def me(
    caller: Annotated[Caller, Depends(subscriber)],
    services: Annotated[Services, Depends(services_of)],
) -> Account:
    quota = services.settings.tier_quota(caller.tier)  # type: ignore[arg-type]
    since: dt.datetime = utc_now(services.clock) - HOUR
    with services.unit_of_work() as session:
        key = ApiKeyRepository(session).get(caller.key_id)
        assert key is not None  # authenticated in this request
        return Account(
            id=caller.user_id,
            email=caller.email,
            tier=caller.tier,
            quotas=Quotas(
                max_alerts=quota.max_alerts,
                max_wallets=quota.max_wallets,
                notifications_per_hour=quota.notifications_per_hour,
                api_requests_per_minute=quota.api_requests_per_minute,
            ),
            usage=Usage(
                active_alerts=AlertRepository(session).count_active_for_user(caller.user_id),
                wallets=TrackedWalletRepository(session).count_for_user(caller.user_id),
                notifications_last_hour=NotificationRepository(session).count_for_user_since(
                    caller.user_id, since
                ),
            ),
            key=KeyOut.of(key),
        )
