"""Address → id in the wallet dictionary (``wallets``, models/wallet.py), for trade writers.

The ids of addresses already stored come from a cache in the process (per engine), so a
batch of known wallets costs no query. Unknown ones are inserted in the writer's own
transaction, before its trades are copied — ``INSERT … ON CONFLICT DO NOTHING`` in address
order, then their ids read back — so two workers meeting the same new address both end up
with the one id: the second's insert waits on the first's uncommitted row and then does
nothing, and its read (a new statement, read committed) sees the committed row.

Ids enter the cache only once their transaction has committed: a rolled-back insert's id
does not exist, and a trade written with it would name no wallet. Rows of ``wallets`` are
never updated or deleted while workers run (an emptied dictionary needs fresh processes).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.wallet import Wallet

# Per engine (database): address → id, committed ids only.
_CACHES: weakref.WeakKeyDictionary[Engine, dict[str, int]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_PENDING = "hw_wallet_ids_pending"


def cached(engine: Engine) -> dict[str, int]:
    """The process's committed ids for ``engine`` (read freely; written under the lock)."""
    cache = _CACHES.get(engine)
    if cache is None:
        with _LOCK:
            cache = _CACHES.setdefault(engine, {})
    return cache


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def ids_for(session: Session, addresses: Iterable[str | None]) -> dict[str, int]:
    """The id of each (non-None) address, inserting the unknown ones (see module)."""
    engine = _engine(session)
    cache = cached(engine)
    pending: dict[str, int] = session.info.setdefault(_PENDING, {})
    wanted = {a for a in addresses if a is not None}
    unknown = sorted(a for a in wanted if a not in cache and a not in pending)
    if unknown:
        insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        # Address order: concurrent writers take the unique index's locks in one order.
        session.execute(
            insert(Wallet).on_conflict_do_nothing(index_elements=["address"]),
            [{"address": a} for a in unknown],
        )
        for start in range(0, len(unknown), 1000):
            chunk = unknown[start : start + 1000]
            rows = session.execute(
                select(Wallet.address, Wallet.id).where(Wallet.address.in_(chunk))
            )
            pending.update({a: int(i) for a, i in rows})
        missing = [a for a in unknown if a not in pending]
        if missing:  # cannot happen: inserted or stored, each is there now
            raise RuntimeError(f"{len(missing)} wallet addresses have no id after insert")
    return {a: cache.get(a) or pending[a] for a in wanted}


class WalletIds:
    """Address → id for a producer of COPY text (a bulk loader's parsing process or
    thread), on a connection of its own: the unknown addresses of a batch are inserted and
    committed at once, in a short transaction apart from the one that will store the
    trades. The trades' COPY text then carries the final ids, so the storing process has
    no per-row rewriting to do (``swap_ids``: ~0.9 µs a row there, on the busiest process
    of an import or a replay).

    Committing the dictionary rows first is safe: an address with an id and no trade yet
    is a dictionary entry like any other (rows are never deleted), and a batch that then
    fails is stored again later with the same ids. PostgreSQL only (SQLite writers share
    one file lock with the storing transaction)."""

    def __init__(self, engine: Engine, *, owned: bool = False) -> None:
        self.engine = engine
        self._owned = owned

    @classmethod
    def connect(cls, url: str) -> WalletIds:
        """On an engine of its own (a parsing process): one connection, named as the
        product's others are (``pg_stat_activity``)."""
        engine = create_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_pre_ping=True,
            connect_args={"application_name": f"hyperwatch:{os.getpid()}", "connect_timeout": 10},
        )
        return cls(engine, owned=True)

    def __call__(self, addresses: Collection[str]) -> dict[str, int]:
        cache = cached(self.engine)
        try:  # every address known (after the first batches, nearly always): no query
            return {a: cache[a] for a in addresses}
        except KeyError:
            pass
        with Session(self.engine) as session, session.begin():
            return ids_for(session, addresses)

    def close(self) -> None:
        if self._owned:
            self.engine.dispose()


@event.listens_for(Session, "after_commit")
def _commit(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        cache = cached(_engine(session))
        with _LOCK:
            cache.update(pending)


@event.listens_for(Session, "after_soft_rollback")
def _rollback(session: Session, previous_transaction: object) -> None:
    # Any rollback, a savepoint's included, forgets the pending ids: always safe (an id
    # not cached is read again), where keeping a rolled-back one would not be.
    session.info.pop(_PENDING, None)


# What TradeRepository.prepare takes to render final ids: a WalletIds, say.
Resolve = Callable[[Collection[str]], dict[str, int]]


def with_ids(rows: Iterable[tuple[Any, ...]], ids: dict[str, int]) -> list[tuple[Any, ...]]:
    """Trades (coin, time, tid, px, sz, side, hash, buyer, seller) with the buyer and
    seller replaced by their ids (None stays None)."""
    get = ids.get
    return [(*row[:7], get(row[7]), get(row[8])) for row in rows]
