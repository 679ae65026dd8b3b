"""Wallet activity derived from public trades (pure): each tracked wallet's side of a trade."""

from __future__ import annotations

from decimal import Decimal as D

from events import Trade
from models.fill import FROM_TRADE
from models.repositories.fills import ACTIVITY_COLUMNS, derive_activity

T0 = 1_787_052_600_000
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
CAROL = "0x" + "c3" * 20
DAVE = "0x" + "d4" * 20


def trade(tid: int, buyer: str | None, seller: str | None, side: str = "B") -> Trade:
    return Trade(
        "ETH", T0 + tid, tid, D("3500.5"), D("0.25"), "B" if side == "B" else "A",
        "0x" + "ab" * 32, buyer, seller,
    )  # fmt: skip


def as_dicts(rows: list[tuple]) -> list[dict[str, object]]:
    return [dict(zip(ACTIVITY_COLUMNS, row, strict=True)) for row in rows]


def test_given_a_tracked_buyer_and_seller_when_derived_then_each_gets_its_side_and_counterparty() -> (
    None
):
    trades = [trade(1, ALICE, BOB, side="A"), trade(2, CAROL, ALICE, side="B")]

    rows = as_dicts(derive_activity(trades, frozenset({ALICE})))

    # The buyer's side is B and the seller's A, whatever side the taker took
    assert rows == [
        {"user": ALICE, "tid": 1, "coin": "ETH", "time": T0 + 1, "px": D("3500.5"),
         "sz": D("0.25"), "side": "B", "hash": "0x" + "ab" * 32, "counterparty": BOB,
         "source": FROM_TRADE},
        {"user": ALICE, "tid": 2, "coin": "ETH", "time": T0 + 2, "px": D("3500.5"),
         "sz": D("0.25"), "side": "A", "hash": "0x" + "ab" * 32, "counterparty": CAROL,
         "source": FROM_TRADE},
    ]  # fmt: skip


def test_given_trades_of_untracked_wallets_only_when_derived_then_nothing() -> None:
    trades = [trade(1, BOB, CAROL), trade(2, CAROL, DAVE), trade(3, None, None)]
    assert derive_activity(trades, frozenset({ALICE})) == []
    # and with no wallet tracked at all, no trade is even looked at
    assert derive_activity([trade(4, ALICE, BOB)], frozenset()) == []


def test_given_a_trade_between_two_tracked_wallets_when_derived_then_two_rows() -> None:
    rows = as_dicts(derive_activity([trade(7, ALICE, BOB)], frozenset({ALICE, BOB})))
    assert [(r["user"], r["tid"], r["side"], r["counterparty"]) for r in rows] == [
        (ALICE, 7, "B", BOB),
        (BOB, 7, "A", ALICE),
    ]


def test_given_mixed_case_addresses_when_derived_then_compared_and_stored_lowercase() -> None:
    rows = as_dicts(derive_activity([trade(3, ALICE.upper().replace("0X", "0x"), BOB.upper())],
                                    frozenset({ALICE})))  # fmt: skip
    assert [(r["user"], r["counterparty"]) for r in rows] == [(ALICE, BOB)]


def test_given_a_self_trade_or_a_repeated_trade_when_derived_then_one_row_per_wallet_and_tid() -> (
    None
):
    # One statement may not write a key twice: a wallet on both sides, or a trade twice in
    # a batch, still gives one row per (user, tid)
    rows = derive_activity([trade(5, ALICE, ALICE), trade(6, ALICE, BOB), trade(6, ALICE, BOB)],
                           frozenset({ALICE}))  # fmt: skip
    assert [(r[0], r[1], r[6]) for r in rows] == [(ALICE, 5, "B"), (ALICE, 6, "B")]


def test_given_one_side_unknown_when_derived_then_the_known_tracked_side_without_counterparty() -> (
    None
):
    rows = as_dicts(derive_activity([trade(8, None, ALICE)], frozenset({ALICE})))
    assert [(r["user"], r["side"], r["counterparty"]) for r in rows] == [(ALICE, "A", None)]


def test_given_many_wallets_and_trades_when_derived_then_sorted_by_user_and_tid() -> None:
    # Sorted by key, so concurrent writers of user_fills take row locks in one order
    trades = [
        trade(tid, (ALICE, BOB, CAROL)[tid % 3], (DAVE, CAROL)[tid % 2]) for tid in range(30, 0, -1)
    ]
    rows = derive_activity(trades, frozenset({ALICE, CAROL, DAVE}))
    keys = [(r[0], r[1]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert {r[0] for r in rows} == {ALICE, CAROL, DAVE}
