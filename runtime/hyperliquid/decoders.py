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

from events import MAX_TIME_MS, AssetContext, Fill, Mid, Position, Side, Trade

_SIDES = ("B", "A")
# Bounds of what storage can hold (BIGINT keys, VARCHAR(40) coins, VARCHAR(66) hashes, exact
# NUMERIC): an element outside them is refused here, alone, instead of reaching a worker and
# costing its whole batch there.
MAX_INT = 2**63 - 1
MAX_COIN = 40
MAX_HASH = 66
MAX_ADDRESS = 42  # "0x" and 40 hex digits
MAX_EXPONENT = 38  # |adjusted exponent|: 1e-38 … 1e38 covers every price, size and rate


def dec(value: Any) -> Decimal:
    # `type(...) is` on purpose: bool is an int subclass and float would be inexact.
    if type(value) is str or type(value) is int:
        d = Decimal(value)
        if d.is_finite() and -MAX_EXPONENT <= d.adjusted() <= MAX_EXPONENT:
            return d
        raise ValueError(f"not a finite number in range: {str(value)[:20]!r}")
    raise TypeError(f"expected a decimal string, got {type(value).__name__}")


def opt_dec(value: Any) -> Decimal | None:
    return None if value is None else dec(value)


def nat(value: Any) -> int:
    """A non-negative JSON integer (times in ms, tids, oids, leverage)."""
    if type(value) is int and 0 <= value <= MAX_INT:
        return value
    raise TypeError(f"expected a non-negative 64-bit integer, got {str(value)[:20]!r}")


def text(value: Any, limit: int = 200) -> str:
    # PostgreSQL text cannot hold NUL; longer than its column, the whole batch would fail.
    if type(value) is str and value and len(value) <= limit and "\x00" not in value:
        return value
    raise TypeError(f"expected a non-empty string of at most {limit} characters")


def coin_name(value: Any) -> str:
    return text(value, MAX_COIN)


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
        and 0 < len(coin) <= MAX_COIN
        and "\x00" not in coin
        and type(time_ms) is int
        and 0 <= time_ms <= MAX_TIME_MS
        and type(tid) is int
        and 0 <= tid <= MAX_INT
        and (type(px) is str or type(px) is int)
        and (type(sz) is str or type(sz) is int)
        and (side_ == "B" or side_ == "A")
        and type(hash_) is str
        and 0 < len(hash_) <= MAX_HASH
        and "\x00" not in hash_
    ):
        _trade_problem(x)
    price, size = Decimal(px), Decimal(sz)
    if not (
        price.is_finite()
        and size.is_finite()
        and -MAX_EXPONENT <= price.adjusted() <= MAX_EXPONENT
        and -MAX_EXPONENT <= size.adjusted() <= MAX_EXPONENT
    ):
        raise ValueError(f"not a finite number in range: px={str(px)[:20]!r} sz={str(sz)[:20]!r}")
    users = x.get("users")
    buyer = seller = None
    if (
        type(users) is list
        and len(users) == 2
        and type(users[0]) is str
        and type(users[1]) is str
        and len(users[0]) <= MAX_ADDRESS
        and len(users[1]) <= MAX_ADDRESS
    ):
        buyer, seller = users[0], users[1]
    return Trade(coin, time_ms, tid, price, size, side_, hash_, buyer, seller)


def _trade_problem(x: Any) -> None:
    """Raise the precise error for a trade that failed the inlined checks."""
    coin_name(x["coin"])
    if nat(x["time"]) > MAX_TIME_MS:
        raise ValueError("time beyond the year 9999")
    nat(x["tid"])
    dec(x["px"])
    dec(x["sz"])
    side(x["side"])
    text(x["hash"], MAX_HASH)
    raise ValueError("invalid trade")  # unreachable unless the two checks disagree


def mid(coin: Any, px: Any, received_ms: int) -> Mid:
    """One ``allMids`` entry; the push has no time of its own, so it is stamped on receipt."""
    return Mid(coin_name(coin), received_ms, dec(px))


def asset_context(coin: Any, ctx: Any, received_ms: int) -> AssetContext:
    """A perp ``activeAssetCtx`` ctx; ``midPx`` and ``premium`` may be null on the wire."""
    return AssetContext(
        coin=coin_name(coin),
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
        coin=coin_name(p["coin"]),
        time=time_ms,
        szi=dec(p["szi"]),
        entry_px=opt_dec(p.get("entryPx")),
        position_value=dec(p["positionValue"]),
        unrealized_pnl=dec(p["unrealizedPnl"]),
        return_on_equity=dec(p["returnOnEquity"]),
        liquidation_px=opt_dec(p.get("liquidationPx")),
        leverage_type=text(leverage["type"], 16),
        leverage_value=nat(leverage["value"]),
        margin_used=dec(p["marginUsed"]),
    )


def fill(user: str, x: Any) -> Fill:
    """One ``userFills`` element; ``side`` is this user's side, ``crossed`` = was taker.
    A ``liquidation`` object, when present, is kept (:func:`liquidation`)."""
    crossed = x["crossed"]
    if type(crossed) is not bool:
        raise TypeError("crossed must be a boolean")
    method, liquidated, mark = liquidation(x.get("liquidation"))
    return Fill(
        user=user,
        coin=coin_name(x["coin"]),
        time=nat(x["time"]),
        tid=nat(x["tid"]),
        oid=nat(x["oid"]),
        px=dec(x["px"]),
        sz=dec(x["sz"]),
        side=side(x["side"]),
        dir=text(x["dir"], 32),
        start_position=dec(x["startPosition"]),
        closed_pnl=dec(x["closedPnl"]),
        fee=dec(x["fee"]),
        fee_token=text(x["feeToken"], 16),
        crossed=crossed,
        hash=text(x["hash"], MAX_HASH),
        liquidation=method,
        liquidated_user=liquidated,
        liquidation_mark_px=mark,
    )


def liquidation(value: Any) -> tuple[str | None, str | None, Decimal | None]:
    """A fill's optional ``liquidation`` object → (method, liquidated user, mark price);
    all None when the fill is no liquidation. ``method`` is "unknown" if the wire leaves it
    out (the object's presence is what marks a liquidation). ``markPx`` is a string on the
    wire though the docs type it as a number (reference §2.12); a number is taken at its
    shortest repr — it is only shown to humans, never compared."""
    if value is None:
        return None, None, None
    if type(value) is not dict:
        raise TypeError("liquidation must be an object")
    method = value.get("method")
    who = value.get("liquidatedUser")
    mark = value.get("markPx")
    if type(mark) is float:
        mark = repr(mark)
    return (
        "unknown" if method is None else text(method, 16),
        None if who is None else user_address(who),
        opt_dec(mark),
    )


def user_address(value: Any) -> str:
    """Addresses are compared lower-case everywhere (settings lower-case tracked wallets)."""
    return text(value, MAX_ADDRESS).lower()
