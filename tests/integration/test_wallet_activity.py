"""Wallet activity in real databases (SQLite and PostgreSQL): tracked wallets' sides of the
public trades land in ``user_fills``, a real fill completes them, either order ends in the
same row, redelivery changes nothing; the persist tasks do it with the worker's wallet set."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import pytest
from sqlalchemy import delete, select

from events import Fill, Trade, encode_batch
from models.db import Database
from models.fill import FROM_FILL, FROM_TRADE, UserFill
from models.repositories import (
    FillRepository,
    TrackedWalletRepository,
    TradeRepository,
    UserRepository,
)
from models.repositories.fills import derive_activity
from models.trade import TradeBar, TradeSnapshot
from runtime import lifecycle
from runtime.clock import ManualClock
from runtime.metrics_export import task_metrics
from runtime.tracked_wallets import TrackedWalletSet
from settings import Settings
from tasks.application import HyperwatchCelery, create_app

pytestmark = pytest.mark.integration

T0 = 1_787_052_600_000
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
CAROL = "0x" + "c3" * 20
DAVE = "0x" + "d4" * 20
HASH = "0x" + "ab" * 32


def trade(tid: int, buyer: str, seller: str, px: str = "3500.5", sz: str = "0.25") -> Trade:
    return Trade("ETH", T0 + tid, tid, D(px), D(sz), "A", HASH, buyer, seller)


def fill(user: str, tid: int, side: str, px: str = "3500.5", sz: str = "0.25") -> Fill:
    return Fill(
        user, "ETH", T0 + tid, tid, 9000 + tid, D(px), D(sz), "B" if side == "B" else "A",
        "Open Long" if side == "B" else "Open Short", D("0"), D("0"), D("0.39"), "USDC",
        False, HASH,
    )  # fmt: skip


def rows(db: Database) -> dict[tuple[str, int], dict[str, Any]]:
    with db.session() as s:
        return {
            (f.user, f.tid): {c.key: getattr(f, c.key) for c in UserFill.__table__.columns}
            for f in s.scalars(select(UserFill))
        }


def store_trades(db: Database, trades: list[Trade], wallets: frozenset[str]) -> Any:
    with db.session() as s:
        result = TradeRepository(s).add_batch(trades, fold_bars=True, wallets=wallets)
        s.commit()
    return result


def store_fills(db: Database, fills: list[Fill]) -> Any:
    with db.session() as s:
        result = FillRepository(s).add_batch(fills)
        s.commit()
    return result


def forget_everything(db: Database) -> None:
    with db.session() as s:
        for model in (UserFill, TradeSnapshot, TradeBar):
            s.execute(delete(model))
        s.commit()


def test_given_a_trade_and_its_fill_in_either_order_then_one_identical_enriched_row(
    database: Database,
) -> None:
    wallets = frozenset({ALICE, BOB})
    trades = [trade(1, ALICE, BOB), trade(2, CAROL, ALICE)]
    fills = [fill(ALICE, 1, "B"), fill(ALICE, 2, "A")]

    # Given the public trades stored first, then Alice's own fills
    derived = store_trades(database, trades, wallets)
    before_fill = rows(database)
    completed = store_fills(database, fills)
    trade_first = rows(database)

    # Then the trades gave Alice two rows and Bob one, from the trade only
    assert (derived.new, derived.activity, derived.activity_duplicates) == (2, 3, 0)
    assert before_fill[(ALICE, 1)] == {
        "user": ALICE, "tid": 1, "coin": "ETH", "time": T0 + 1, "oid": None, "px": D("3500.5"),
        "sz": D("0.25"), "side": "B", "dir": None, "start_position": None, "closed_pnl": None,
        "fee": None, "fee_token": None, "crossed": None, "hash": HASH, "counterparty": BOB,
        "source": FROM_TRADE,
    }  # fmt: skip
    # And the fills completed Alice's rows, not added to them
    assert (completed.new, completed.duplicates) == (2, 0)
    assert set(trade_first) == {(ALICE, 1), (ALICE, 2), (BOB, 1)}

    # When it happens the other way round: the fills first, then the trades
    forget_everything(database)
    first = store_fills(database, fills)
    assert rows(database)[(ALICE, 1)]["counterparty"] is None
    late = store_trades(database, trades, wallets)
    fill_first = rows(database)

    # Then the trades only added the counterparties, and both orders end in the same rows
    assert (first.new, late.new, late.activity) == (2, 2, 3)
    assert fill_first == trade_first
    alice = fill_first[(ALICE, 1)]
    assert alice == {
        "user": ALICE, "tid": 1, "coin": "ETH", "time": T0 + 1, "oid": 9001, "px": D("3500.5"),
        "sz": D("0.25"), "side": "B", "dir": "Open Long", "start_position": D("0"),
        "closed_pnl": D("0"), "fee": D("0.39"), "fee_token": "USDC", "crossed": False,
        "hash": HASH, "counterparty": BOB, "source": FROM_FILL,
    }  # fmt: skip
    assert fill_first[(ALICE, 2)]["counterparty"] == CAROL
    # Bob has no fill of his own: his row stays what the trade says
    bob = fill_first[(BOB, 1)]
    assert (bob["side"], bob["counterparty"], bob["source"], bob["oid"]) == (
        "A",
        ALICE,
        "trade",
        None,
    )


def test_given_everything_redelivered_then_rows_unchanged_and_counted_as_duplicates(
    database: Database,
) -> None:
    wallets = frozenset({ALICE, BOB})
    trades = [trade(1, ALICE, BOB), trade(2, CAROL, ALICE)]
    fills = [fill(ALICE, 1, "B"), fill(ALICE, 2, "A")]
    store_trades(database, trades, wallets)
    store_fills(database, fills)
    stored = rows(database)

    # When the trades, the fills and the derived rows themselves arrive again
    trades_again = store_trades(database, trades, wallets)
    fills_again = store_fills(database, fills + fills[:1])  # a fill twice in one batch too
    with database.session() as s:
        activity_again = FillRepository(s).add_activity(derive_activity(trades, wallets))
        s.commit()

    # Then nothing changed and every write says so
    assert (trades_again.new, trades_again.activity, trades_again.activity_duplicates) == (0, 0, 0)
    assert (fills_again.new, fills_again.duplicates) == (0, 3)
    assert (activity_again.new, activity_again.duplicates) == (0, 3)
    assert rows(database) == stored


def test_given_a_wallet_tracked_later_when_an_overlapping_batch_arrives_then_only_new_trades_count(
    database: Database,
) -> None:
    # Given two trades stored while nobody tracked Alice
    assert (
        store_trades(database, [trade(1, ALICE, BOB), trade(2, BOB, ALICE)], frozenset()).activity
        == 0
    )

    # When a batch holding them again and a new one is stored with Alice tracked
    result = store_trades(
        database, [trade(1, ALICE, BOB), trade(2, BOB, ALICE), trade(3, ALICE, DAVE)],
        frozenset({ALICE}),
    )  # fmt: skip

    # Then activity comes from the trade this transaction inserted, only
    assert (result.new, result.duplicates, result.activity) == (1, 2, 1)
    assert set(rows(database)) == {(ALICE, 3)}


def test_given_prepared_trades_when_stored_then_their_activity_is_stored(
    database: Database,
) -> None:
    trades = [trade(1, ALICE, BOB), trade(2, CAROL, DAVE), trade(3, DAVE, ALICE)]
    prepared = TradeRepository.prepare(trades, frozenset({ALICE}))
    with database.session() as s:
        with pytest.raises(ValueError, match="prepare"):
            TradeRepository(s).add_batch(prepared, wallets=frozenset({ALICE}))
        result = TradeRepository(s).add_batch(prepared, fold_bars=True)
        # A replay of the same prepared batch: nothing new, so no activity either
        again = TradeRepository(s).add_batch(prepared, fold_bars=True)
        s.commit()
    assert (result.new, result.activity, again.new, again.activity) == (3, 2, 0, 0)
    assert {k: (r["side"], r["counterparty"]) for k, r in rows(database).items()} == {
        (ALICE, 1): ("B", BOB),
        (ALICE, 3): ("A", DAVE),
    }


def test_given_prepared_trades_shipped_without_their_rows_when_stored_then_activity_stored(
    pg_database: Database,
) -> None:
    # The archive importer's decoding processes send COPY text, bar deltas and activity only
    first = [trade(1, ALICE, BOB), trade(2, CAROL, DAVE)]
    both = [*first, trade(3, DAVE, ALICE)]
    with pg_database.session() as s:
        TradeRepository(s).add_batch(first, fold_bars=True)  # stored before, untracked then
        shipped = replace(TradeRepository.prepare(both, frozenset({ALICE, DAVE})), trades=())
        result = TradeRepository(s).add_batch(shipped, fold_bars=True)
        s.commit()
    # Only the trade this transaction inserted counts, found through the rows it returned
    assert (result.new, result.duplicates, result.activity) == (1, 2, 2)
    assert set(rows(pg_database)) == {(ALICE, 3), (DAVE, 3)}


def test_given_the_wallet_set_when_wallets_are_tracked_then_seen_after_the_refresh_period(
    database: Database,
) -> None:
    clock = ManualClock()
    wallets = TrackedWalletSet([ALICE.upper().replace("0X", "0x")], refresh_s=10, clock=clock)
    with database.session() as s:
        user = UserRepository(s).create("ops@example.com")
        TrackedWalletRepository(s).track(user.id, BOB)
        s.commit()
        # TRACKED_WALLETS and the database's, lowercase
        assert wallets.current(s) == {ALICE, BOB}

        # When Carol is tracked while the worker runs
        TrackedWalletRepository(s).track(user.id, CAROL)
        s.commit()
        clock.advance(9.9)
        # Then the set is not read again before the refresh period …
        assert wallets.current(s) == {ALICE, BOB}
        # … and holds her after it, without a restart
        clock.advance(0.1)
        assert wallets.current(s) == {ALICE, BOB, CAROL}


# --- through the persist tasks -------------------------------------------------------------


@pytest.fixture()
def app(database: Database, settings_for: Callable[..., Settings]) -> Iterator[HyperwatchCelery]:
    app = create_app(
        settings_for(database_url=database.url, tracked_wallets=[ALICE], wallet_set_refresh_s=0)
    )
    app.loader.import_default_modules()
    yield app
    lifecycle.registry.reset()


def run(app: HyperwatchCelery, name: str, payload: Any) -> dict[str, int]:
    result: dict[str, int] = app.tasks[f"hyperwatch.persist.{name}"].apply(args=[payload]).get()
    return result


def stored_metric(table: str) -> float:
    labels = {"table": table}
    return task_metrics().registry.get_sample_value("hyperwatch_rows_stored_total", labels) or 0.0


def test_given_tracked_wallets_when_batches_are_persisted_then_activity_recorded_and_completed(
    app: HyperwatchCelery, database: Database
) -> None:
    # Given Alice tracked in TRACKED_WALLETS and Bob in the database
    with database.session() as s:
        user = UserRepository(s).create("ops@example.com")
        TrackedWalletRepository(s).track(user.id, BOB)
        s.commit()
    before = stored_metric("user_fills")

    # When a trade batch and Alice's fills (from her WebSocket stream) are persisted
    trades = [trade(1, ALICE, BOB), trade(2, CAROL, DAVE), trade(3, DAVE, ALICE)]
    stored = run(app, "trades", encode_batch("trades", trades, source="t", seq=1))
    fills = run(app, "fills", encode_batch("fills", [fill(ALICE, 1, "B")], source="t", seq=2))

    # Then both wallets' sides of their trades were recorded, Carol's and Dave's not
    assert stored == {"new": 3, "duplicates": 0, "bars": 1, "activity": 3}
    assert fills == {"new": 1, "duplicates": 0}
    got = rows(database)
    assert set(got) == {(ALICE, 1), (BOB, 1), (ALICE, 3)}
    assert (got[(ALICE, 1)]["source"], got[(ALICE, 1)]["oid"], got[(ALICE, 1)]["counterparty"]) == (
        FROM_FILL, 9001, BOB,
    )  # fmt: skip
    assert stored_metric("user_fills") == before + 4

    # When Carol is tracked (refreshed at every batch here) and a redelivery and a new trade come
    with database.session() as s:
        TrackedWalletRepository(s).track(user.id, CAROL)
        s.commit()
    again = run(
        app, "trades", encode_batch("trades", [*trades, trade(4, CAROL, BOB)], source="t", seq=3)
    )

    # Then only the new trade gives activity: Carol's and Bob's sides of it
    assert again == {"new": 1, "duplicates": 3, "bars": 1, "activity": 2}
    assert set(rows(database)) == {(ALICE, 1), (BOB, 1), (ALICE, 3), (CAROL, 4), (BOB, 4)}
