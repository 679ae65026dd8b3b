"""Gaps and the completeness ledger built from them (models/gap.py says what a gap is)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from sqlalchemy import func, or_, select

from models.base import utcnow
from models.gap import STATUS_ORDER, Gap
from models.repositories.base import Repository
from models.trade import TradeBar

HOUR_MS: Final = 3_600_000


class Recorded(NamedTuple):
    new: int  # gaps first seen
    closed: int  # gaps this write closed (healing can start on them)


@dataclass(frozen=True, slots=True)
class GapSummary:
    unfilled: dict[str, int]  # stream → gaps open or partial
    seconds: dict[tuple[str, str], float]  # (stream, open|healed|unrecoverable) → seconds


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One coin-hour: what is stored and how much of the hour lay inside gaps."""

    coin: str
    hour_ms: int
    trades: int
    open_s: float  # seconds inside gaps still open or only partly filled
    healed_s: float  # seconds inside gaps filled since
    unrecoverable_s: float

    @property
    def status(self) -> str:
        if self.open_s > 0:
            return "open"
        if self.unrecoverable_s > 0:
            return "unrecoverable"
        return "healed" if self.healed_s > 0 else "complete"

    def to_dict(self) -> dict[str, Any]:
        return {
            "coin": self.coin,
            "hour": dt.datetime.fromtimestamp(self.hour_ms / 1000, dt.UTC).isoformat(),
            "trades": self.trades,
            "open_s": round(self.open_s, 3),
            "healed_s": round(self.healed_s, 3),
            "unrecoverable_s": round(self.unrecoverable_s, 3),
            "status": self.status,
        }


def _ms_to_dt(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


class GapRepository(Repository[Gap]):
    model = Gap

    def record(self, records: Iterable[Mapping[str, Any]]) -> Recorded:
        """Upsert gap records from the ingester; idempotency key: ``id``.

        A record may open a gap (``to_ms`` None) or close it. A close is kept once made, a
        status never moves back (``STATUS_ORDER``), so a repeated or late open never
        reopens a closed or healed gap.
        """
        new = closed = 0
        for rec in records:
            row = self.get(rec["id"])
            if row is None:
                row = Gap(
                    id=rec["id"],
                    source=str(rec.get("source") or "")[:128],
                    stream=rec["stream"],
                    key=rec["key"],
                    from_ms=int(rec["from_ms"]),
                    ended_by=str(rec.get("ended_by") or "unknown")[:32],
                    status="open",
                    filled=0,
                    opened_at=_ms_to_dt(rec.get("opened_at")) or utcnow(),
                )
                self.session.add(row)
                new += 1
            if rec.get("to_ms") is not None and row.to_ms is None:
                row.to_ms = max(int(rec["to_ms"]), row.from_ms)
                row.closed_at = utcnow()
                closed += 1
        self.session.flush()
        return Recorded(new, closed)

    def settle(self, gap_id: str, status: str, healed_by: str | None, filled: int) -> bool:
        """Record what healing achieved; a status only moves forward. True if it moved."""
        row = self.get(gap_id)
        if row is None or STATUS_ORDER[status] <= STATUS_ORDER[row.status]:
            if row is not None:
                row.filled = max(row.filled or 0, filled)
            return False
        row.status = status
        row.healed_by = healed_by
        row.filled = max(row.filled or 0, filled)
        row.settled_at = utcnow()
        self.session.flush()
        return True

    def to_heal(self, limit: int = 100) -> list[Gap]:
        """Closed gaps not yet settled, oldest first: what healing works through."""
        stmt = (
            select(Gap)
            .where(Gap.status == "open", Gap.to_ms.is_not(None))
            .order_by(Gap.from_ms)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def listing(
        self,
        *,
        key: str | None = None,
        only_open: bool = False,
        since_ms: int | None = None,
        limit: int = 1000,
    ) -> list[Gap]:
        stmt = select(Gap)
        if key is not None:
            stmt = stmt.where(Gap.key == key)
        if only_open:
            stmt = stmt.where(Gap.status.in_(("open", "partial")))
        if since_ms is not None:
            stmt = stmt.where(or_(Gap.to_ms.is_(None), Gap.to_ms >= since_ms))
        return list(self.session.scalars(stmt.order_by(Gap.from_ms.desc()).limit(limit)))

    def open_since(self, since_ms: int) -> int:
        """How many gaps not yet filled touch the time since ``since_ms`` (health)."""
        stmt = select(func.count()).where(
            Gap.status.in_(("open", "partial")),
            or_(Gap.to_ms.is_(None), Gap.to_ms >= since_ms),
        )
        return int(self.session.scalar(stmt) or 0)

    def summary(self, since_ms: int, now_ms: int, recent_ms: int | None = None) -> GapSummary:
        """The seconds of [since_ms, now_ms] inside gaps per (stream, status), and the gaps
        not yet filled that touch [recent_ms, now_ms] (default: the same span) per stream:
        what health and the gauges report."""
        recent = since_ms if recent_ms is None else max(recent_ms, since_ms)
        stmt = select(Gap.stream, Gap.status, Gap.from_ms, Gap.to_ms).where(
            Gap.from_ms < now_ms, or_(Gap.to_ms.is_(None), Gap.to_ms > since_ms)
        )
        unfilled: dict[str, int] = {}
        seconds: dict[tuple[str, str], float] = {}
        for stream, status, from_ms, to_ms in self.session.execute(stmt):
            touches_recent = to_ms is None or to_ms > recent
            if status in ("open", "partial") and touches_recent:
                unfilled[stream] = unfilled.get(stream, 0) + 1
            span = min(now_ms, to_ms if to_ms is not None else now_ms) - max(since_ms, from_ms)
            if span > 0:
                slot = (stream, "open" if status == "partial" else status)
                seconds[slot] = seconds.get(slot, 0.0) + span / 1000
        return GapSummary(unfilled, seconds)

    def covered_by(
        self, stream: str, keys: Sequence[str] | None, from_ms: int, to_ms: int
    ) -> list[Gap]:
        """Unsettled, closed gaps lying wholly inside [from_ms, to_ms], of ``keys`` (None:
        of any key)."""
        stmt = select(Gap).where(
            Gap.stream == stream,
            Gap.status.in_(("open", "partial")),
            Gap.to_ms.is_not(None),
            Gap.from_ms >= from_ms,
            Gap.to_ms <= to_ms,
        )
        if keys is not None:
            if not keys:
                return []
            stmt = stmt.where(Gap.key.in_(list(keys)))
        return list(self.session.scalars(stmt))

    def ledger(
        self, since_ms: int, until_ms: int, coin: str | None = None, now_ms: int | None = None
    ) -> list[LedgerRow]:
        """Per coin and hour in [since_ms, until_ms): trades stored and gap seconds.

        Trades are counted from the 1-minute bars (folded from exactly the rows inserted),
        so the ledger costs one grouped read of bars, not a scan of trades.
        """
        start = since_ms - since_ms % HOUR_MS
        now = now_ms if now_ms is not None else int(utcnow().timestamp() * 1000)
        hour = (TradeBar.minute - TradeBar.minute % HOUR_MS).label("hour")
        bars = select(TradeBar.coin, hour, func.sum(TradeBar.trade_count)).where(
            TradeBar.minute >= start, TradeBar.minute < until_ms
        )
        if coin is not None:
            bars = bars.where(TradeBar.coin == coin)
        counts: dict[tuple[str, int], int] = {
            (c, int(h)): int(n or 0)
            for c, h, n in self.session.execute(bars.group_by("coin", hour))
        }
        gaps_stmt = select(Gap).where(
            Gap.stream == "trades",
            Gap.from_ms < until_ms,
            or_(Gap.to_ms.is_(None), Gap.to_ms > start),
        )
        if coin is not None:
            gaps_stmt = gaps_stmt.where(Gap.key == coin)
        seconds: dict[tuple[str, int], list[float]] = {}
        for gap in self.session.scalars(gaps_stmt):
            end = gap.to_ms if gap.to_ms is not None else now
            slot = {"healed": 1, "unrecoverable": 2}.get(gap.status, 0)
            for h in range(
                max(start, gap.from_ms - gap.from_ms % HOUR_MS), min(end, until_ms), HOUR_MS
            ):
                overlap = min(end, h + HOUR_MS, until_ms) - max(gap.from_ms, h)
                if overlap > 0:
                    seconds.setdefault((gap.key, h), [0.0, 0.0, 0.0])[slot] += overlap / 1000
        rows = []
        for coin_, h in sorted(set(counts) | set(seconds), key=lambda k: (k[1], k[0])):
            o, healed, lost = seconds.get((coin_, h), [0.0, 0.0, 0.0])
            rows.append(LedgerRow(coin_, h, counts.get((coin_, h), 0), o, healed, lost))
        return rows
