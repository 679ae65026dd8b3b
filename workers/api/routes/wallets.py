"""``/v1/wallets``: the wallets the caller tracks (wallet alerts need one). Tracking twice
is not an error and not a quota use; untracking deactivates the wallet's alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from domain.alerts.manage import track_wallet, untrack_wallet
from models.repositories import TrackedWalletRepository
from models.user import User
from workers.api.auth import Caller, subscriber
from workers.api.errors import OBJECT_RESPONSES
from workers.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, decode, page_of
from workers.api.schemas import Untracked, WalletIn, WalletOut, WalletTracked
from workers.api.services import Services, services_of

router = APIRouter(prefix="/v1/wallets", tags=["wallets"], responses=OBJECT_RESPONSES)
Svc = Annotated[Services, Depends(services_of)]
Me = Annotated[Caller, Depends(subscriber)]


@router.post("", status_code=201)
def track(body: WalletIn, me: Me, services: Svc) -> WalletTracked:
    with services.unit_of_work() as session:
        user = session.get(User, me.user_id)
        assert user is not None  # authenticated in this request
        wallet, created = track_wallet(session, services.settings, user, body.address, body.label)
        return WalletTracked(**WalletOut.of(wallet).model_dump(), created=created)


@router.get("")
def list_wallets(
    me: Me,
    services: Svc,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[WalletOut]:
    with services.unit_of_work() as session:
        rows = TrackedWalletRepository(session).page(
            {"user_id": me.user_id}, after=decode(cursor), limit=limit + 1
        )
        return page_of(rows, limit, WalletOut.of)  # type: ignore[arg-type]


@router.delete("/{address}")
def untrack(address: str, me: Me, services: Svc) -> Untracked:
    """Stop tracking; the wallet's alerts are deactivated (listed in the answer)."""
    with services.unit_of_work() as session:
        user = session.get(User, me.user_id)
        assert user is not None  # authenticated in this request
        paused = untrack_wallet(session, user, address)
    services.announce(paused)
    return Untracked(address=address.strip().lower(), deactivated_alerts=paused)
