"""Wire element → typed event, one function per element shape of Hyperliquid's channels.

Contract: each decoder takes one already-JSON-decoded element and returns the event, or
raises ``KeyError``/``TypeError``/``ValueError``/``ArithmeticError`` when the element is not
what the reference (``hyperliquid-api.md`` §2) says. Callers (``protocol``) catch exactly
those, so a bad element is counted and skipped and never escapes. Numbers that are money,
sizes or rates become ``Decimal`` from the wire's strings; floats are refused because they
would already have lost digits. Times, tids and oids are ints (bools refused).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from events import AssetContext, Fill, Mid, Position, Side, Trade

_SIDES = ("B", "A")


def dec(value: Any) -> Decimal:
    # `type(...) is` on purpose: bool is an int subclass and float would be inexact.
    if type(value) is str or type(value) is int:
        d = Decimal(value)
        if d.is_finite():
            return d
        raise ValueError(f"not a finite number: {str(value)[:20]!r}")
    raise TypeError(f"expected a decimal string, got {type(value).__name__}")


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def nat(value: Any) -> int:
    """A non-negative JSON integer (times in ms, tids, oids, leverage)."""
    if type(value) is int and value >= 0:
        return value
    raise TypeError(f"expected a non-negative integer, got {str(value)[:20]!r}")


def text(value: Any) -> str:
    if type(value) is str and value:
        return value
    raise TypeError(f"expected a non-empty string, got {type(value).__name__}")


def side(value: Any) -> Side:
    if value in _SIDES:
        return cast(Side, value)
    raise ValueError(f"side must be 'B' or 'A', got {str(value)[:10]!r}")


def trade(x: Any) -> Trade:
    """A ``trades`` element. ``users`` is [buyer, seller] (not taker/maker) and optional.

    The hot path of the whole ingester (~100k calls a second), so the checks are inlined;
    when one fails, :func:`_trade_problem` re-checks field by field to name the culprit.
    """
    coin, time_ms, tid, px, sz, side_, hash_ = (
        x["coin"], x["time"], x["tid"], x["px"], x["sz"], x["side"], x["hash"],
    )  # fmt: skip
    if not (
        type(coin) is str
        and coin
        and type(time_ms) is int
        and time_ms >= 0
        and type(tid) is int
        and tid >= 0
        and (type(px) is str or type(px) is int)
        and (type(sz) is str or type(sz) is int)
        and (side_ == "B" or side_ == "A")
        and type(hash_) is str
        and hash_
    ):
        _trade_problem(x)
    price, size = Decimal(px), Decimal(sz)
    if not (price.is_finite() and size.is_finite()):
        raise ValueError(f"not a finite number: px={px!r} sz={sz!r}")
    users = x.get("users")
    buyer = seller = None
    if type(users) is list and len(users) == 2 and type(users[0]) is str and type(users[1]) is str:
        buyer, seller = users[0], users[1]
    return Trade(coin, time_ms, tid, price, size, side_, hash_, buyer, seller)


def _trade_problem(x: Any) -> None:
    """Raise the precise error for a trade that failed the inlined checks."""
    text(x["coin"])
    nat(x["time"])
    nat(x["tid"])
    dec(x["px"])
    dec(x["sz"])
    side(x["side"])
    text(x["hash"])
    raise ValueError("invalid trade")  # unreachable unless the two checks disagree


def mid(coin: Any, px: Any, received_ms: int) -> Mid:
    """One ``allMids`` entry; the push has no time of its own, so it is stamped on receipt."""
    return Mid(text(coin), received_ms, dec(px))


def asset_context(coin: Any, ctx: Any, received_ms: int) -> AssetContext:
    """A perp ``activeAssetCtx`` ctx; ``midPx`` and ``premium`` may be null on the wire."""
    return AssetContext(
        coin=text(coin),
        time=received_ms,
        funding=dec(ctx["funding"]),
        open_interest=dec(ctx["openInterest"]),
        mark_px=dec(ctx["markPx"]),
        oracle_px=dec(ctx["oraclePx"]),
        mid_px=opt_dec(ctx.get("midPx")),
        premium=opt_dec(ctx.get("premium")),
        day_ntl_vlm=dec(ctx["dayNtlVlm"]),
        prev_day_px=dec(ctx["prevDayPx"]),
    )


def position(user: str, time_ms: int, entry: Any) -> Position:
    """One ``assetPositions[]`` entry of a clearinghouse state (WS push or REST reply)."""
    p = entry["position"]
    leverage = p["leverage"]
    return Position(
        user=user,
        coin=text(p["coin"]),
        time=time_ms,
        szi=dec(p["szi"]),
        entry_px=opt_dec(p.get("entryPx")),
        position_value=dec(p["positionValue"]),
        unrealized_pnl=dec(p["unrealizedPnl"]),
        return_on_equity=dec(p["returnOnEquity"]),
        liquidation_px=opt_dec(p.get("liquidationPx")),
        leverage_type=text(leverage["type"]),
        leverage_value=nat(leverage["value"]),
        margin_used=dec(p["marginUsed"]),
    )


def fill(user: str, x: Any) -> Fill:
    """One ``userFills`` element; ``side`` is this user's side, ``crossed`` = was taker."""
    crossed = x["crossed"]
    if type(crossed) is not bool:
        raise TypeError("crossed must be a boolean")
    return Fill(
        user=user,
        coin=text(x["coin"]),
        time=nat(x["time"]),
        tid=nat(x["tid"]),
        oid=nat(x["oid"]),
        px=dec(x["px"]),
        sz=dec(x["sz"]),
        side=side(x["side"]),
        dir=text(x["dir"]),
        start_position=dec(x["startPosition"]),
        closed_pnl=dec(x["closedPnl"]),
        fee=dec(x["fee"]),
        fee_token=text(x["feeToken"]),
        crossed=crossed,
        hash=text(x["hash"]),
    )


def user_address(value: Any) -> str:
    """Addresses are compared lower-case everywhere (settings lower-case tracked wallets)."""
    return text(value).lower()
