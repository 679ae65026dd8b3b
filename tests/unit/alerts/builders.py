"""Builders shared by the alert tests: events with only the fields a test cares about."""

from __future__ import annotations

from decimal import Decimal

from events import AssetContext, Mid, Position

WALLET = "0x" + "ab" * 20


def mid(coin: str, time: int, px: str) -> Mid:
    return Mid(coin=coin, time=time, px=Decimal(px))


def ctx(
    coin: str, time: int, *, mark: str = "100", funding: str = "0.0000125", oi: str = "1000"
) -> AssetContext:
    return AssetContext(
        coin=coin,
        time=time,
        funding=Decimal(funding),
        open_interest=Decimal(oi),
        mark_px=Decimal(mark),
        oracle_px=Decimal(mark),
        mid_px=Decimal(mark),
        premium=Decimal("0"),
        day_ntl_vlm=Decimal("0"),
        prev_day_px=Decimal(mark),
    )


def position(
    coin: str, time: int, *, liq: str | None = "90", szi: str = "1", user: str = WALLET
) -> Position:
    return Position(
        user=user,
        coin=coin,
        time=time,
        szi=Decimal(szi),
        entry_px=Decimal("100"),
        position_value=Decimal("100"),
        unrealized_pnl=Decimal("0"),
        return_on_equity=Decimal("0"),
        liquidation_px=None if liq is None else Decimal(liq),
        leverage_type="cross",
        leverage_value=10,
        margin_used=Decimal("10"),
    )
