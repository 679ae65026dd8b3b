"""Stored market data read back in time order, for replays (``hyperwatch alerts backtest``).

Read-only. Each table is read with a server-side cursor (``stream_results``: PostgreSQL
sends rows ``batch`` at a time instead of the whole result; memory stays flat over a day
of trades) in its key order, and the three streams are merged by time
(:func:`heapq.merge`), so the caller sees one ordered stream of events as they happened.
At the same millisecond: asset contexts (and the mid each carries), then positions, then
trades — the order in which a consumer of one tick would know them.

Stored asset contexts are one per coin and ``ASSET_CONTEXT_BUCKET_S`` (the first of each
bucket, at the bucket's start); mids are not stored apart, so the mid a context carries
stands for the coin's mid at that moment.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from events import AssetContext, Mid, Position, Side, Trade
from models.asset_context import AssetContextSnapshot
from models.gap import Gap
from models.position import PositionSnapshot
from models.trade import TRADES_AS_READ, TradeSnapshot

Event = Mid | AssetContext | Position | Trade
BATCH: Final = 5_000
_ORDER: Final = {AssetContext: 0, Mid: 1, Position: 2, Trade: 3}


def _stream(session: Session, stmt: Select[tuple[object]], batch: int) -> Iterator[object]:
    result = session.execute(stmt.execution_options(stream_results=True, yield_per=batch))
    yield from result.scalars()


def _contexts(
    session: Session, coins: Sequence[str], from_ms: int, to_ms: int, batch: int
) -> Iterator[Event]:
    t = AssetContextSnapshot
    stmt = (
        select(t)
        .where(t.coin.in_(coins), t.time >= from_ms, t.time < to_ms)
        .order_by(t.time, t.coin)
    )
    for row in _stream(session, stmt, batch):  # type: ignore[arg-type]
        assert isinstance(row, AssetContextSnapshot)
        yield AssetContext(
            coin=row.coin, time=row.time, funding=row.funding, open_interest=row.open_interest,
            mark_px=row.mark_px, oracle_px=row.oracle_px, mid_px=row.mid_px,
            premium=row.premium, day_ntl_vlm=row.day_ntl_vlm, prev_day_px=row.prev_day_px,
        )  # fmt: skip
        if row.mid_px is not None:
            yield Mid(coin=row.coin, time=row.time, px=row.mid_px)


def _positions(
    session: Session, wallets: Sequence[str], coins: Sequence[str], from_ms: int, to_ms: int,
    batch: int,
) -> Iterator[Event]:  # fmt: skip
    t = PositionSnapshot
    stmt = (
        select(t)
        .where(t.user.in_(wallets), t.coin.in_(coins), t.time >= from_ms, t.time < to_ms)
        .order_by(t.time, t.user, t.coin)
    )
    for row in _stream(session, stmt, batch):  # type: ignore[arg-type]
        assert isinstance(row, PositionSnapshot)
        yield Position(
            user=row.user, coin=row.coin, time=row.time, szi=row.szi, entry_px=row.entry_px,
            position_value=row.position_value, unrealized_pnl=row.unrealized_pnl,
            return_on_equity=row.return_on_equity, liquidation_px=row.liquidation_px,
            leverage_type=row.leverage_type, leverage_value=row.leverage_value,
            margin_used=row.margin_used,
        )  # fmt: skip


def _trades(
    session: Session, coins: Sequence[str], from_ms: int, to_ms: int, batch: int
) -> Iterator[Event]:
    # The addresses through the wallet dictionary joined once (a hash join over the distinct
    # wallets), not looked up trade by trade: a backtest streams millions of rows.
    t = TRADES_AS_READ.c
    stmt = (
        select(t.coin, t.time, t.tid, t.px, t.sz, t.side, t.hash, t.buyer, t.seller)
        .where(t.coin.in_(coins), t.time >= from_ms, t.time < to_ms)
        .order_by(t.time, t.coin, t.tid)
        .execution_options(stream_results=True, yield_per=batch)
    )
    for coin, time, tid, px, sz, side, hash_, buyer, seller in session.execute(stmt):
        yield Trade(coin, time, tid, px, sz, cast(Side, side), hash_, buyer, seller)


@dataclass(frozen=True, slots=True)
class Span:
    """What to read: ``coins``' contexts (and trades unless ``trades`` is False: no rule
    reads them) and ``wallets``' positions in ``coins``, over [from_ms, to_ms)."""

    coins: Sequence[str]
    wallets: Sequence[str]
    from_ms: int
    to_ms: int
    trades: bool = True


def events(session: Session, span: Span, batch: int = BATCH) -> Iterator[Event]:
    """Every stored event of ``span`` in time order (see module)."""
    coins = sorted(set(span.coins))
    a, b = span.from_ms, span.to_ms
    streams = [_contexts(session, coins, a, b, batch)]
    if span.wallets:
        wallets = sorted({w.lower() for w in span.wallets})
        streams.append(_positions(session, wallets, coins, a, b, batch))
    if span.trades:
        streams.append(_trades(session, coins, a, b, batch))
    return heapq.merge(*streams, key=lambda e: (e.time, _ORDER[type(e)]))


def count(session: Session, span: Span) -> int:
    """How many rows :func:`events` reads (for a progress bar; a context carrying a mid
    counts once)."""
    coins = list(span.coins)
    total = 0
    tables: list[tuple[Any, Any]] = [(AssetContextSnapshot, AssetContextSnapshot.coin.in_(coins))]
    if span.trades:
        tables.append((TradeSnapshot, TradeSnapshot.coin.in_(coins)))
    if span.wallets:
        wallets = [w.lower() for w in span.wallets]
        p = PositionSnapshot
        tables.append((p, p.user.in_(wallets) & p.coin.in_(coins)))
    for table, where in tables:
        stmt = select(func.count()).select_from(table).where(where)
        in_span = stmt.where(table.time >= span.from_ms, table.time < span.to_ms)
        total += int(session.scalar(in_span) or 0)
    return total


def trade_gaps(
    session: Session, coins: Sequence[str], from_ms: int, to_ms: int
) -> list[tuple[str, int, int | None]]:
    """(coin, opened ms, to_ms) of the trades gaps of ``coins`` that touch [from_ms, to_ms):
    when each was open, as the alert workers saw it then."""
    stmt = select(Gap).where(Gap.stream == "trades", Gap.key.in_(coins), Gap.from_ms < to_ms)
    out = []
    for gap in session.scalars(stmt):
        opened = int(gap.opened_at.timestamp() * 1000)
        if gap.to_ms is None or gap.to_ms > from_ms:
            out.append((gap.key, opened, gap.to_ms))
    return out
