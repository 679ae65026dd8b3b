"""Trades: bulk idempotent insert keyed on (coin, time, tid); the bars and the tracked
wallets' activity of the trades inserted, in the same transaction.

Every writer of trades goes through :meth:`TradeRepository.add_batch` — live batches
(tasks/persist.py), REST healing (tasks/heal.py), the archive importer
(domain/archive/importer.py) — so what is derived from a trade is derived here, once, from
the rows the transaction actually inserted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, select

from events import Trade
from models.partitions import DAY_MS
from models.repositories.bars import BarDelta, BarRepository, fold
from models.repositories.bulk import copy_text, insert_ignore_values
from models.repositories.fills import ActivityRow, FillRepository, derive_activity
from models.repositories.snapshots import BulkResult, SnapshotWriter
from models.repositories.wallet_ids import Resolve, ids_for, with_ids
from models.trade import TradeSnapshot

_TABLE: Table = TradeSnapshot.__table__  # type: ignore[assignment]
# A trade as stored: its buyer and seller as ids into the wallet dictionary (migration
# 0012, models/repositories/wallet_ids.py), in the order of a Trade's fields.
_COLUMNS = (*Trade._fields[:7], "buyer_id", "seller_id")
_HASH, _BUYER, _SELLER = itemgetter(6), itemgetter(7), itemgetter(8)
# A trade's COPY line when every value is plain (bulk.copy_text's fast path, specialised):
# the hash written as bytea hex input of its canonical encoding (tag 00, then the digits
# after "0x", models/hexbytes.py), the wallets as their ids.
_LINE = "%s\t%s\t%s\t%s\t%s\t%s\t\\\\x00%s\t%s\t%s\n"
_HEX_AND_TABS = str.maketrans("", "", "0123456789abcdefx\t")
# What the bar fold reads of each new trade (bars.fold).
_FOLDED = ("coin", "time", "tid", "px", "sz", "side")
_KEY = _FOLDED[:3]


@dataclass(frozen=True, slots=True)
class PreparedTrades:
    """Trades with the Python half of storing them done ahead (:meth:`TradeRepository.prepare`):
    their COPY text, their 1-minute bar deltas as if all were new, their time span, and the
    tracked wallets' rows of activity derived from them as if all were new.

    ``trades`` may be left out (``()``) to send a batch to another process cheaply; it is
    then storable on PostgreSQL only (``count`` says how many rows ``copy_data`` holds).

    Preparing needs no database, so the wallet ids are not known yet: ``copy_data`` holds
    each buyer and seller as its index in ``addresses`` (the batch's distinct addresses),
    and :meth:`TradeRepository.add_batch` swaps in the ids (:func:`swap_ids`) — unless
    the preparer resolved them (``resolved``: a bulk loader's own connection,
    ``wallet_ids.WalletIds``), and ``copy_data`` holds the ids themselves."""

    trades: Sequence[Trade]
    count: int
    copy_data: bytes
    bars: list[BarDelta]
    min_time: int | None
    max_time: int | None
    activity: Sequence[ActivityRow] = ()
    addresses: tuple[str, ...] = ()
    resolved: bool = False


class TradeRepository(SnapshotWriter):
    table = _TABLE
    partitioned = True

    @classmethod
    def prepare(
        cls,
        trades: Sequence[Trade],
        wallets: AbstractSet[str] = frozenset(),
        resolve: Resolve | None = None,
    ) -> PreparedTrades:
        """What :meth:`add_batch` would compute in Python before and after writing,
        ``wallets`` (lowercase) being the tracked ones. A bulk loader prepares batch k+1
        while batch k is being written, so the writing thread mostly waits on the database.

        Pure, any thread — unless ``resolve`` is given (``wallet_ids.WalletIds``, on a
        connection of its own): the batch's addresses are then resolved to their wallet
        ids here, and the COPY text carries them (``resolved``)."""
        times = [t.time for t in trades]
        distinct: set[str | None] = set(map(_BUYER, trades))
        distinct.update(map(_SELLER, trades))
        distinct.discard(None)
        if resolve is not None:
            ids = resolve(distinct)  # type: ignore[arg-type]  # None discarded
            addresses: tuple[str, ...] = ()
        else:
            addresses = tuple(distinct)  # type: ignore[arg-type]
            ids = {a: i for i, a in enumerate(addresses)}
        return PreparedTrades(
            trades,
            len(trades),
            _copy_text(trades, ids).encode(),
            fold(trades),
            min(times) if times else None,
            max(times) if times else None,
            derive_activity(trades, wallets),
            addresses,
            resolved=resolve is not None,
        )

    def add_batch(
        self,
        trades: Sequence[Trade] | PreparedTrades,
        *,
        fold_bars: bool = False,
        wallets: AbstractSet[str] = frozenset(),
    ) -> BulkResult:
        """Store trades (or :meth:`prepare`-d trades); idempotency key (coin, time, tid).

        With ``fold_bars`` the trades that were new — only those, so a replay adds nothing —
        are folded into their 1-minute bars in the same transaction, and ``bars`` counts
        the bars touched.

        ``wallets``: the tracked wallets, lowercase (prepared trades carry theirs from
        :meth:`prepare`). Each new trade's buyer or seller among them gets its side of the
        trade in ``user_fills``, in the same transaction (:meth:`FillRepository.add_activity`:
        a row the wallet's own fill already wrote only gains the counterparty); ``activity``
        counts those rows.
        ``inserted`` holds the new trades (of the ones given: none when only COPY text was).
        """
        prepared: PreparedTrades | None = None
        if isinstance(trades, PreparedTrades):
            if wallets:
                raise ValueError(
                    "prepared trades carry their wallets' activity: prepare(…, wallets)"
                )
            prepared, rows = trades, trades.trades
            activity: Sequence[ActivityRow] = trades.activity
        else:
            rows = trades
            activity = derive_activity(rows, wallets)
        count = prepared.count if prepared is not None else len(rows)
        if not count:
            return BulkResult(0, 0)
        low, high = (prepared.min_time, prepared.max_time) if prepared else (None, None)
        if low is not None and high is not None:
            self._ensure_days([*range(low, high, DAY_MS), high])  # a time in every day
        else:
            self._ensure_days(t.time for t in rows)
        # The wallets' ids first, in this transaction (unknown addresses are inserted).
        if prepared is not None:
            copy_data: bytes | None = prepared.copy_data
            if not prepared.resolved:
                ids = ids_for(self.session, prepared.addresses)
                copy_data = swap_ids(prepared.copy_data, [ids[a] for a in prepared.addresses])
            # PostgreSQL stores the COPY text; SQLite the rows (prepared with their trades).
            postgres = self.session.get_bind().dialect.name == "postgresql"
            values: Sequence[tuple[Any, ...]] = rows if postgres else self._with_ids(rows)
        elif self.session.get_bind().dialect.name == "postgresql":
            ids = ids_for(self.session, (a for t in rows for a in t[7:]))
            copy_data = _copy_text(rows, ids).encode()
            values = rows  # what is returned of them, their six leading columns, is the same
        else:
            copy_data = None
            values = self._with_ids(rows)
        new, new_rows = insert_ignore_values(
            self.session,
            self.table,
            _COLUMNS,
            values,
            returning=_FOLDED if fold_bars else (_KEY if activity else ()),
            copy_data=copy_data,
            returning_if_all_new=prepared is None,
            count=count,
        )
        bars = 0
        inserted: Sequence[Trade] = ()
        if fold_bars:
            bar_repository = BarRepository(self.session)
            if prepared is not None and new == count:
                bars = bar_repository.merge(prepared.bars)  # all new: folded ahead
            else:
                bars = bar_repository.fold_in(new_rows)
            inserted = _inserted(rows, new, count, new_rows)
        stored = self._add_activity(activity, new == count, new_rows)
        return BulkResult(new, count - new, bars, stored.new, stored.duplicates, inserted=inserted)

    def _with_ids(self, rows: Sequence[Trade]) -> list[tuple[Any, ...]]:
        return with_ids(rows, ids_for(self.session, (a for t in rows for a in t[7:])))

    def _add_activity(
        self, activity: Sequence[ActivityRow], all_new: bool, new_rows: list[tuple[Any, ...]]
    ) -> BulkResult:
        """The activity of the trades this transaction inserted: all of them, or those among
        ``new_rows`` (each led by the trade's key). A trade stored before — a replay, the
        other ingester's copy — derived its activity when it was inserted."""
        if activity and not all_new:
            inserted = {(r[0], int(r[1]), int(r[2])) for r in new_rows}
            # An activity row is (user, tid, coin, time, …): its trade's key is (coin, time, tid).
            activity = [a for a in activity if (a[2], a[3], a[1]) in inserted]
        if not activity:
            return BulkResult(0, 0)
        return FillRepository(self.session).add_activity(activity)

    def for_coin(self, coin: str, since_ms: int = 0, limit: int = 1000) -> list[TradeSnapshot]:
        stmt = (
            select(TradeSnapshot)
            .where(TradeSnapshot.coin == coin, TradeSnapshot.time >= since_ms)
            .order_by(TradeSnapshot.time, TradeSnapshot.tid)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def keys(self) -> set[tuple[str, int, int]]:
        """Every stored (coin, time, tid): for ground-truth comparisons in tests and audits."""
        rows = self.session.execute(
            select(TradeSnapshot.coin, TradeSnapshot.time, TradeSnapshot.tid)
        )
        return {(c, int(t), int(i)) for c, t, i in rows}


def _copy_text(trades: Sequence[Trade], ids: dict[str, int]) -> str:
    """``copy_text(table, _COLUMNS, with_ids(trades, ids))``, in one pass when the batch is
    plain — hashes canonical hex, no NULL, nothing COPY must escape — which live, replayed
    and archived trades are (a fifth of preparing a batch, ~0.5 µs a trade less than the
    general function); any other batch is written by the general function."""
    hashes = list(map(_HASH, trades))
    try:
        joined = "\t".join(hashes)
    except TypeError:  # a hash of None
        joined = ""
    count = len(trades)
    if not (  # every hash "0x" then lowercase hex digit pairs (bulk._all_canonical_hex)
        count
        and joined.startswith("0x")
        and joined.count("\t0x") == count - 1
        and joined.count("x") == count
        and not joined.translate(_HEX_AND_TABS)
        and not any(n & 1 for n in set(map(len, hashes)))
    ):
        return copy_text(_TABLE, _COLUMNS, with_ids(trades, ids))
    get: Callable[[str | None], int | None] = ids.get  # type: ignore[assignment]
    body = "".join(
        [
            _LINE % (coin, time, tid, px, sz, side, hash_[2:], get(buyer), get(seller))
            for coin, time, tid, px, sz, side, hash_, buyer, seller in trades
        ]
    )
    if (
        "None" not in body  # a NULL (an unknown wallet id, a missing value)
        and "\r" not in body
        and body.count("\\") == 2 * count  # two a line, the hash's; no value holds one
        and body.count("\t") == count * (len(_COLUMNS) - 1)
        and body.count("\n") == count
    ):
        return body
    return copy_text(_TABLE, _COLUMNS, with_ids(trades, ids))


def swap_ids(copy_data: bytes, ids: Sequence[int]) -> bytes:
    """:meth:`TradeRepository.prepare`'s COPY text with each row's last two fields (buyer
    and seller: an index into the batch's addresses, or NULL) replaced by the wallet ids.
    Fields never hold a raw tab or newline (COPY escapes them), so the last two tabs of a
    line delimit them. About 0.9 µs a row, on the writing thread."""
    if not copy_data:
        return copy_data
    as_field = [str(i).encode() for i in ids]
    null = b"\\N"
    out = []
    for line in copy_data.split(b"\n")[:-1]:
        head, buyer, seller = line.rsplit(b"\t", 2)
        out.append(
            b"%s\t%s\t%s\n"
            % (
                head,
                buyer if buyer == null else as_field[int(buyer)],
                seller if seller == null else as_field[int(seller)],
            )
        )
    return b"".join(out)


def _inserted(
    rows: Sequence[Trade], new: int, count: int, new_rows: Sequence[tuple[object, ...]]
) -> Sequence[Trade]:
    """The given trades that were new: all of them (the usual case, free), or those whose
    key the insert returned (a replay or redelivery: rare)."""
    if new == count:
        return rows
    if not new or not rows:
        return ()
    keys = {row[:3] for row in new_rows}
    return [trade for trade in rows if trade[:3] in keys]
