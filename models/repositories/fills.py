"""Tracked wallets' trades in ``user_fills``, keyed on (user, tid): their own fills and their
side of the public trades (models/fill.py says how the two meet)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Any

from sqlalchemy import Table

from events import Fill, Trade
from models.fill import FROM_FILL, FROM_TRADE, UserFill
from models.repositories.bulk import upsert_values
from models.repositories.snapshots import BulkResult, SnapshotWriter

KEY = ("user", "tid")
# A real fill's row, in this order.
FILL_COLUMNS = (
    "user", "tid", "coin", "time", "oid", "px", "sz", "side", "dir", "start_position",
    "closed_pnl", "fee", "fee_token", "crossed", "hash", "source",
)  # fmt: skip
# A row derived from a public trade, in this order (ActivityRow).
ACTIVITY_COLUMNS = (
    "user",
    "tid",
    "coin",
    "time",
    "px",
    "sz",
    "side",
    "hash",
    "counterparty",
    "source",
)

# (user, tid, coin, time, px, sz, side, hash, counterparty, source): ACTIVITY_COLUMNS.
ActivityRow = tuple[str, int, str, int, Decimal, Decimal, str, str, str | None, str]


def derive_activity(trades: Iterable[Trade], wallets: AbstractSet[str]) -> list[ActivityRow]:
    """Each tracked wallet's side of ``trades``: ``B`` for the buyer, ``A`` for the seller,
    the other address as counterparty. ``wallets`` are lowercase; addresses are compared
    lowercase. A trade between two tracked wallets gives two rows; one whose buyer and
    seller are the same wallet gives one (the key is (user, tid)). Sorted by (user, tid).

    The cost per trade is two set lookups; none at all with no wallet tracked.
    """
    if not wallets:
        return []
    rows: dict[tuple[str, int], ActivityRow] = {}
    for t in trades:
        buyer = t.buyer.lower() if t.buyer else None
        seller = t.seller.lower() if t.seller else None
        if buyer is not None and buyer in wallets:
            row = (buyer, t.tid, t.coin, t.time, t.px, t.sz, "B", t.hash, seller, FROM_TRADE)
            rows.setdefault((buyer, t.tid), row)
        if seller is not None and seller in wallets:
            row = (seller, t.tid, t.coin, t.time, t.px, t.sz, "A", t.hash, buyer, FROM_TRADE)
            rows.setdefault((seller, t.tid), row)
    return [rows[k] for k in sorted(rows)]


class FillRepository(SnapshotWriter):
    table: Table = UserFill.__table__  # type: ignore[assignment]

    def add_batch(self, fills: Sequence[Fill]) -> BulkResult:
        """Store a wallet's own fills; idempotency key (user, tid).

        A row derived from the public trade (``source`` ``trade``) is completed: every fill
        field is set from the fill and ``source`` becomes ``fill``; its counterparty stays.
        A fill already stored is a duplicate and changes nothing. ``new`` counts rows
        inserted or completed, ``inserted`` holds their (user, tid): the fills stored for
        the first time as fills (what liquidation alerts act on, once).
        """
        rows: dict[tuple[str, int], tuple[Any, ...]] = {}
        for f in fills:
            user = f.user.lower()
            rows[(user, f.tid)] = (
                user, f.tid, f.coin, f.time, f.oid, f.px, f.sz, f.side, f.dir,
                f.start_position, f.closed_pnl, f.fee, f.fee_token, f.crossed, f.hash, FROM_FILL,
            )  # fmt: skip
        stored: list[tuple[Any, ...]] = []
        changed = upsert_values(
            self.session,
            self.table,
            FILL_COLUMNS,
            [rows[k] for k in sorted(rows)],
            key=KEY,
            update=FILL_COLUMNS[len(KEY) :],
            where=self.table.c.source == FROM_TRADE,
            changed_keys=stored,
        )
        return BulkResult(changed, len(fills) - changed, inserted=stored)

    def add_activity(self, rows: Sequence[ActivityRow]) -> BulkResult:
        """Store tracked wallets' sides of public trades (:func:`derive_activity`, one row
        per (user, tid), sorted); idempotency key (user, tid).

        A row already stored — the wallet's own fill came first — gets only the
        counterparty, if it has none; nothing else changes. ``new`` counts rows inserted or
        given their counterparty.
        """
        changed = upsert_values(
            self.session,
            self.table,
            ACTIVITY_COLUMNS,
            rows,
            key=KEY,
            update=("counterparty",),
            where=self.table.c.counterparty.is_(None),
        )
        return BulkResult(changed, len(rows) - changed)
