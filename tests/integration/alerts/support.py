"""Helpers for alert and notification tests: subscribers, channels and alerts written the
way the CLI writes them (``domain.alerts.manage`` + announce), market batches stamped with
the current time; ``wait_until`` (polling with a deadline, no fixed sleeps) re-exported."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import redis
from sqlalchemy import select

from domain.alerts.book import announce
from domain.alerts.manage import create_alert, create_channel, track_wallet
from events import AssetContext, Mid, Position, encode_batch
from models.db import Database
from models.notification import Notification
from models.repositories import UserRepository
from settings import Settings
from tests.integration.celery.support import wait_until  # noqa: F401 - re-exported

WALLET = "0x" + "ab" * 20
SECRET = "whsec-test-0123456789"


def now_ms() -> int:
    return int(time.time() * 1000)


def add_user(db: Database, email: str = "trader@example.com", tier: str = "pro") -> int:
    with db.session() as s:
        return UserRepository(s).create(email, tier).id


def add_channel(
    db: Database,
    settings: Settings,
    user_id: int,
    target: str | None,
    kind: str = "webhook",
    secret: str | None = SECRET,
) -> int:
    with db.session() as s:
        user = UserRepository(s).get(user_id)
        assert user is not None
        return create_channel(s, settings, user, kind, target, secret).id


def add_wallet(db: Database, settings: Settings, user_id: int, address: str = WALLET) -> None:
    with db.session() as s:
        user = UserRepository(s).get(user_id)
        assert user is not None
        track_wallet(s, settings, user, address)


def add_alert(
    db: Database,
    settings: Settings,
    client: redis.Redis,
    user_id: int,
    channel_id: int,
    **fields: Any,
) -> int:
    with db.session() as s:
        user = UserRepository(s).get(user_id)
        assert user is not None
        alert_id = create_alert(s, settings, user, fields, channel_id).id
    announce(client, [alert_id])
    return alert_id


def mids(time_ms: int, **prices: str) -> dict[str, Any]:
    return encode_batch(
        "mids", [Mid(coin=c, time=time_ms, px=Decimal(p)) for c, p in prices.items()]
    )


def context(
    coin: str, time_ms: int, *, mark: str = "100", funding: str = "0.0000125", oi: str = "1000"
) -> AssetContext:
    return AssetContext(
        coin=coin, time=time_ms, funding=Decimal(funding), open_interest=Decimal(oi),
        mark_px=Decimal(mark), oracle_px=Decimal(mark), mid_px=Decimal(mark),
        premium=Decimal("0"), day_ntl_vlm=Decimal("0"), prev_day_px=Decimal(mark),
    )  # fmt: skip


def contexts(*items: AssetContext) -> dict[str, Any]:
    return encode_batch("asset_contexts", items)


def position(
    coin: str, time_ms: int, *, liq: str | None, szi: str = "1", user: str = WALLET
) -> Position:
    return Position(
        user=user, coin=coin, time=time_ms, szi=Decimal(szi), entry_px=Decimal("100"),
        position_value=Decimal("100"), unrealized_pnl=Decimal("0"),
        return_on_equity=Decimal("0"), liquidation_px=None if liq is None else Decimal(liq),
        leverage_type="cross", leverage_value=10, margin_used=Decimal("10"),
    )  # fmt: skip


def positions(*items: Position) -> dict[str, Any]:
    return encode_batch("positions", items)


def notifications(db: Database) -> list[Notification]:
    with db.session() as s:
        return list(s.scalars(select(Notification).order_by(Notification.id)))


def fired_alert_ids(db: Database) -> list[int]:
    return sorted(n.alert_id for n in notifications(db) if n.alert_id is not None)
