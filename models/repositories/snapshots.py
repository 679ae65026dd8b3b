"""Shared machinery of the append-only snapshot repositories (trades, contexts, positions …)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from models.partitions import DAY_MS, day_of, ensure_partitions, partition_name
from models.repositories.bulk import insert_ignore


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk write did: ``new`` rows inserted, ``duplicates`` already present.

    ``inserted``: the rows this write inserted, where the repository reports them (trades
    stored with ``fold_bars``: the ``Trade`` events; fills: their ``(user, tid)`` keys) —
    what happened for the first time, for the alerts that judge events (a replay inserts
    nothing, so it is reported nothing)."""

    new: int
    duplicates: int
    bars: int = 0  # trades stored with fold_bars: 1-minute bars the new trades went into
    # trades stored with tracked wallets: user_fills rows derived from the new trades that
    # were inserted or completed (activity), or were already complete (activity_duplicates)
    activity: int = 0
    activity_duplicates: int = 0
    inserted: Sequence[Any] = ()


class SnapshotWriter:
    """Bulk, idempotent inserts into one table, creating day partitions on demand."""

    table: Table
    partitioned: bool = False

    def __init__(self, session: Session) -> None:
        self.session = session

    def _insert(self, rows: Sequence[dict[str, Any]], returning: Sequence[str] = ()) -> BulkResult:
        """Insert ``rows``; with ``returning``, those columns of each row inserted are
        reported (``BulkResult.inserted``)."""
        if not rows:
            return BulkResult(0, 0)
        if self.partitioned:
            self._ensure_days(row["time"] for row in rows)
        new, inserted = insert_ignore(self.session, self.table, rows, returning)
        return BulkResult(new=new, duplicates=len(rows) - new, inserted=inserted)

    def _ensure_days(self, times: Iterable[int]) -> None:
        conn = self.session.connection()
        if conn.dialect.name != "postgresql":
            return
        # Integer days first: one date object per distinct day, not one per row.
        days = {day_of(d * DAY_MS) for d in {t // DAY_MS for t in times}}
        known = _known_days.setdefault(self.table.name, set())
        missing = days - known
        if missing:
            created = set(ensure_partitions(conn, self.table.name, missing))
            # Remember only days whose partition existed already (committed): one created
            # here vanishes if this transaction rolls back (a poison batch, a lost
            # connection), and the next batch of that day must create it again — it finds
            # it, and remembers it, once this transaction has committed.
            known.update(d for d in missing if partition_name(self.table.name, d) not in created)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(self.table)) or 0)

    def newest_time(self) -> int | None:
        value = self.session.scalar(select(func.max(self.table.c.time)))
        return int(value) if value is not None else None


# Days whose partitions this process has seen or created; partitions are only ever dropped
# for days far behind retention, which no live batch writes into.
_known_days: dict[str, set[Any]] = {}


def forget_known_partitions() -> None:
    """Drop the per-process partition cache (after retention dropped partitions)."""
    _known_days.clear()
