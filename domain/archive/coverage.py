"""What the imported archive files cover, and the gaps inside it they heal.

An hourly ``node_fills_by_block`` (or ``node_fills``/``node_trades``) file holds every trade
the exchange executed, of every coin, in its hour (bucketed by the node's receive time, so
a few hundred milliseconds spill across the hour's edges). A file imported completely
(``archive_imports.status = done``) therefore proves the record complete between its first
and last trade time, and consecutive hours join into one span. A gap lying wholly inside a
span is ``healed`` by ``archive``: every trade of its window is now stored, whatever REST
could not reach. A wallet's ``userFills`` gap is healed the same way by the fill formats,
when the wallet was tracked at import (only tracked wallets' fills are imported).

A gap still open (no first event after it yet) is not healed here: its end is unknown, and
data after the archive's last hour may still be missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.archive_import import ArchiveImport
from models.db import Database
from models.repositories import GapRepository
from models.trade import TradeSnapshot

# Two files' spans closer than this are one span: consecutive hours of a live market are
# seconds apart at most; a missing hour leaves an hour between them.
JOIN_MS: Final = 60_000
FILL_FORMATS: Final = ("node_fills", "node_fills_by_block")


def merged(spans: Iterable[tuple[int, int]], join_ms: int = JOIN_MS) -> list[tuple[int, int]]:
    """Sorted, non-overlapping spans; spans within ``join_ms`` of each other are joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if out and start <= out[-1][1] + join_ms:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def heal_covered_gaps(database: Database, wallets: Iterable[str]) -> int:
    """Settle every unsettled gap the completely imported files cover; returns how many."""
    tracked = sorted({w.lower() for w in wallets})
    healed = 0
    with database.session() as session:
        rows = session.execute(
            select(ArchiveImport.format, ArchiveImport.min_time, ArchiveImport.max_time).where(
                ArchiveImport.status == "done", ArchiveImport.min_time.is_not(None)
            )
        ).all()
        spans = [
            (fmt, int(lo), int(hi)) for fmt, lo, hi in rows if lo is not None and hi is not None
        ]
        trade_spans = merged((lo, hi) for _fmt, lo, hi in spans)
        fill_spans = merged((lo, hi) for fmt, lo, hi in spans if fmt in FILL_FORMATS)
        healed += heal_inside(session, "trades", None, trade_spans, "archive")
        healed += heal_inside(session, "userFills", tracked, fill_spans, "archive")
        session.commit()
    return healed


def heal_inside(
    session: Session,
    stream: str,
    keys: Sequence[str] | None,
    spans: Iterable[tuple[int, int]],
    healed_by: str,
) -> int:
    """Settle as ``healed`` (by ``healed_by``) every unsettled, closed gap of ``stream`` and
    ``keys`` (None: any key) lying wholly inside one of ``spans``, spans over which every
    event is now stored; returns how many moved. A trade gap's ``filled`` is the trades
    stored in its window; a fill gap keeps its own. Also used by ``hyperwatch replay``,
    whose spans are per coin (what its recording held without a hole)."""
    repo = GapRepository(session)
    healed = 0
    for start, end in spans:
        for gap in repo.covered_by(stream, keys, start, end):
            filled = gap.filled or 0
            if stream == "trades":
                filled = int(
                    session.scalar(
                        select(func.count()).where(
                            TradeSnapshot.coin == gap.key,
                            TradeSnapshot.time >= gap.from_ms,
                            TradeSnapshot.time <= (gap.to_ms or gap.from_ms),
                        )
                    )
                    or 0
                )
            healed += repo.settle(gap.id, "healed", healed_by, filled)
    return healed
