"""Repository contract, run once on SQLite and once on PostgreSQL (the `database` fixture)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from events import AssetContext, Fill, Position, Trade
from models.alert import Alert
from models.db import Database
from models.repositories import (
    AlertRepository,
    AssetContextRepository,
    BarRepository,
    ChannelRepository,
    FillRepository,
    NotificationRepository,
    PositionRepository,
    SessionRepository,
    TrackedWalletRepository,
    TradeRepository,
    UserRepository,
)

T0 = 1_787_052_600_000
WALLET = "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291"


def trade(
    tid: int, time: int = T0, coin: str = "ETH", px: str = "4321.7", side: str = "B"
) -> Trade:
    return Trade(coin, time, tid, D(px), D("0.8421"), side, "0x" + "ab" * 32, WALLET, None)  # type: ignore[arg-type]


# --- generic base ----------------------------------------------------------------------------


def test_given_users_when_listing_with_filters_and_pages_then_matching_rows(
    database: Database,
) -> None:
    with database.session() as s:
        users = UserRepository(s)
        for i in range(5):
            users.create(f"u{i}@example.com", tier="pro" if i % 2 else "free")
    with database.session() as s:
        users = UserRepository(s)
        assert users.count({"tier": "pro"}) == 2
        page = users.list({"tier": ["free", "pro"]}, order_by="-email", limit=2, offset=1)
        assert [u.email for u in page] == ["u3@example.com", "u2@example.com"]
        assert users.by_email("U1@Example.com ") is not None


def test_given_unknown_filter_column_when_listing_then_refused(database: Database) -> None:
    with database.session() as s, pytest.raises(ValueError, match="no column 'tierr'"):
        UserRepository(s).list({"tierr": "pro"})


def test_given_injection_string_as_filter_value_when_listing_then_it_is_just_a_value(
    database: Database,
) -> None:
    with database.session() as s:
        UserRepository(s).create("a@example.com")
    with database.session() as s:
        assert UserRepository(s).list({"email": "x' OR '1'='1"}) == []
        assert UserRepository(s).count() == 1


def test_given_row_when_updated_and_deleted_then_changes_and_delete_is_idempotent(
    database: Database,
) -> None:
    with database.session() as s:
        uid = UserRepository(s).create("a@example.com").id
    with database.session() as s:
        users = UserRepository(s)
        assert users.set_tier(uid, "enterprise") is not None
        assert users.get(uid).tier == "enterprise"  # type: ignore[union-attr]
        assert users.delete(uid) is True
        assert users.delete(uid) is False


def test_given_duplicate_email_when_creating_then_integrity_error(database: Database) -> None:
    with pytest.raises(IntegrityError), database.session() as s:
        UserRepository(s).create("dup@example.com")
        UserRepository(s).create("dup@example.com")


# --- snapshots -------------------------------------------------------------------------------


def test_given_trade_batch_when_stored_twice_then_second_reports_zero_new(
    database: Database,
) -> None:
    batch = [trade(i, T0 + i) for i in range(50)] + [trade(7, T0 + 7)]  # one in-batch duplicate
    with database.session() as s:
        first = TradeRepository(s).add_batch(batch)
    with database.session() as s:
        second = TradeRepository(s).add_batch(batch)
        assert TradeRepository(s).count() == 50
    assert (first.new, first.duplicates) == (50, 1)
    assert (second.new, second.duplicates) == (0, 51)


def test_given_trades_sharing_hash_when_stored_then_each_is_kept(database: Database) -> None:
    with database.session() as s:
        result = TradeRepository(s).add_batch([trade(1), trade(2)])  # same hash, time; other tid
    assert result.new == 2


def test_given_decimal_prices_when_stored_then_read_back_exactly(database: Database) -> None:
    with database.session() as s:
        TradeRepository(s).add_batch([trade(1, px="0.000012345678901234")])
    with database.session() as s:
        (row,) = TradeRepository(s).for_coin("ETH")
        assert row.px == D("0.000012345678901234")


def test_given_new_trades_when_folded_then_replay_does_not_double_count(database: Database) -> None:
    batch = [
        trade(1, T0, px="100", side="B"),
        trade(2, T0 + 1000, px="102", side="A"),
        trade(3, T0 + 61_000, px="101"),
    ]
    for _ in range(2):  # the second pass is a replay
        with database.session() as s:
            TradeRepository(s).add_batch(batch, fold_bars=True)
    with database.session() as s:
        bars = BarRepository(s).bars("ETH")
    assert [b["trade_count"] for b in bars] == [2, 1]
    assert bars[0]["open"] == D("100") and bars[0]["close"] == D("102")
    assert bars[0]["volume"] == D("1.6842")
    assert bars[0]["volume_delta"] == D("0")
    assert bars[1]["cvd"] == D("0.8421")


def test_given_batch_overlapping_stored_trades_when_folded_then_only_new_ones_count(
    database: Database,
) -> None:
    """A redelivered batch with extra trades (an outage replay merged with new ones):
    PostgreSQL's direct COPY fails on the stored ones and the batch goes through staging;
    the new trades are stored and folded, the stored ones neither."""
    first = [trade(1, T0, px="100"), trade(2, T0 + 500, px="101")]
    both = [trade(0, T0, px="99", side="A"), *first, trade(3, T0 + 900, px="104")]
    with database.session() as s:
        assert TradeRepository(s).add_batch(first, fold_bars=True).new == 2
    with database.session() as s:
        result = TradeRepository(s).add_batch(both, fold_bars=True)
    assert (result.new, result.duplicates, result.bars) == (2, 2, 1)
    with database.session() as s:
        (bar,) = BarRepository(s).bars("ETH")
        assert TradeRepository(s).count() == 4
    assert bar["trade_count"] == 4
    assert (bar["open"], bar["close"], bar["low"], bar["high"]) == (
        D("99"), D("104"), D("99"), D("104"),
    )  # fmt: skip
    assert bar["volume"] == 4 * D("0.8421")
    assert bar["volume_delta"] == 2 * D("0.8421")


def test_given_out_of_order_batches_when_folded_then_open_close_follow_trade_order(
    database: Database,
) -> None:
    late, early = [trade(9, T0 + 5000, px="110")], [trade(1, T0 + 10, px="90")]
    for batch in (late, early):
        with database.session() as s:
            TradeRepository(s).add_batch(batch, fold_bars=True)
    with database.session() as s:
        (bar,) = BarRepository(s).bars("ETH")
    assert (bar["open"], bar["close"], bar["low"], bar["high"]) == (
        D("90"),
        D("110"),
        D("90"),
        D("110"),
    )


def test_given_contexts_in_one_bucket_when_stored_then_first_wins(database: Database) -> None:
    def ctx(t: int, mark: str) -> AssetContext:
        return AssetContext(
            "BTC", t, D("0.0000125"), D("100"), D(mark), D(mark), None, None, D("1"), D("1")
        )

    with database.session() as s:
        r1 = AssetContextRepository(s).add_batch(
            [ctx(T0 + 1000, "1"), ctx(T0 + 2000, "2")], bucket_ms=60_000
        )
        r2 = AssetContextRepository(s).add_batch(
            [ctx(T0 + 3000, "3"), ctx(T0 + 61_000, "4")], bucket_ms=60_000
        )
        assert AssetContextRepository(s).count() == 2
    assert (r1.new, r1.duplicates, r2.new, r2.duplicates) == (1, 1, 1, 1)


def test_given_positions_when_stored_twice_then_idempotent_and_latest_found(
    database: Database,
) -> None:
    def pos(t: int, szi: str) -> Position:
        return Position(
            WALLET,
            "ETH",
            t,
            D(szi),
            D("4316.58"),
            D("1478.48"),
            D("1.78"),
            D("0.012"),
            None,
            "cross",
            10,
            D("147.8"),
        )

    with database.session() as s:
        assert PositionRepository(s).add_batch([pos(T0, "0.3"), pos(T0 + 5, "0.5")]).new == 2
        assert PositionRepository(s).add_batch([pos(T0 + 5, "0.5")]).new == 0
    with database.session() as s:
        assert PositionRepository(s).latest(WALLET, "ETH").szi == D("0.5")  # type: ignore[union-attr]
        assert [p.time for p in PositionRepository(s).latest_for_users([WALLET])] == [T0 + 5]


def test_given_fills_when_stored_twice_then_idempotent_on_user_tid(database: Database) -> None:
    fill = Fill(
        WALLET,
        "SOL",
        T0,
        1002339875512364,
        1,
        D("186.41"),
        D("12.5"),
        "A",
        "Open Short",
        D("0"),
        D("0"),
        D("0.349519"),
        "USDC",
        False,
        "0x" + "1a" * 32,
    )
    with database.session() as s:
        assert FillRepository(s).add_batch([fill, fill]).new == 1
        assert FillRepository(s).add_batch([fill]).new == 0


# --- sessions, wallets, alerts, outbox ------------------------------------------------------------


def test_given_session_records_when_upserted_out_of_order_then_never_rolls_back(
    database: Database,
) -> None:
    sid = str(uuid.uuid4())
    newer = {
        "id": sid,
        "source": "ing",
        "started_at": T0,
        "ended_at": T0 + 9000,
        "end_reason": "sigterm",
        "frames": 10,
        "events": 50,
        "malformed": 1,
        "duplicates": 2,
        "gaps": [{"stream": "trades", "coin": "ETH", "from_ms": T0, "to_ms": T0 + 5}],
    }
    older = {**newer, "ended_at": None, "end_reason": None, "frames": 4, "gaps": []}
    with database.session() as s:
        SessionRepository(s).upsert(newer)
        SessionRepository(s).upsert(older)
    with database.session() as s:
        row = SessionRepository(s).get(sid)
    assert row is not None
    assert (row.frames, row.events, row.gap_count, row.end_reason) == (10, 50, 1, "sigterm")
    assert row.ended_at is not None and row.ended_at.tzinfo is not None


def test_given_wallet_when_tracked_twice_then_one_row(database: Database) -> None:
    with database.session() as s:
        uid = UserRepository(s).create("w@example.com").id
        wallets = TrackedWalletRepository(s)
        first = wallets.track(uid, WALLET.upper().replace("0X", "0x"))
        assert wallets.track(uid, WALLET).id == first.id
        assert wallets.all_addresses() == [WALLET]
        assert wallets.untrack(uid, WALLET) is True
        assert wallets.untrack(uid, WALLET) is False


def _alert(s, uid: int, mode: str = "once") -> int:
    alert = AlertRepository(s).add(
        Alert(user_id=uid, coin="BTC", kind="price_above", threshold=D("100000"), mode=mode)
    )
    return alert.id


def test_given_armed_alert_when_fired_twice_then_only_first_claims(database: Database) -> None:
    with database.session() as s:
        uid = UserRepository(s).create("a@example.com").id
        once, recurring = _alert(s, uid, "once"), _alert(s, uid, "recurring")
    with database.session() as s:
        alerts = AlertRepository(s)
        assert alerts.fire(once, T0, once=True) is True
        assert alerts.fire(once, T0, once=True) is False
        assert alerts.fire(recurring, T0, once=False) is True
        assert alerts.fire(recurring, T0 + 1, once=False) is False
        assert alerts.rearm(recurring) is True
        assert alerts.rearm(recurring) is False
        assert alerts.rearm(once) is False
    with database.session() as s:
        assert [a.id for a in AlertRepository(s).armed_for_coin("BTC")] == [recurring]
        assert AlertRepository(s).count_active_for_user(uid) == 1


def test_given_outbox_key_when_enqueued_twice_then_one_row_and_single_transition(
    database: Database,
) -> None:
    with database.session() as s:
        uid = UserRepository(s).create("n@example.com").id
        ch = ChannelRepository(s).create(uid, "webhook", "https://example.com/hook", secret="s")
        outbox = NotificationRepository(s)
        row, created = outbox.enqueue(
            user_id=uid,
            channel_id=ch.id,
            channel_kind="webhook",
            payload={"a": 1},
            idempotency_key="k1",
        )
        again, created_again = outbox.enqueue(
            user_id=uid,
            channel_id=ch.id,
            channel_kind="webhook",
            payload={"a": 2},
            idempotency_key="k1",
        )
        assert created and not created_again and again.id == row.id
        outbox.record_attempt(row.id, "HTTP 500")
        assert outbox.mark_sent(row.id) is True
        assert outbox.mark_sent(row.id) is False
        assert outbox.mark_failed(row.id, "late") is False
    with database.session() as s:
        stored = NotificationRepository(s).get(row.id)
        assert stored is not None and stored.status == "sent" and stored.attempts == 1
        since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
        assert NotificationRepository(s).count_for_user_since(uid, since) == 1
        future = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        assert NotificationRepository(s).pending_older_than(future) == []


def test_given_text_with_copy_control_characters_when_bulk_stored_then_read_back_exactly(
    database: Database,
) -> None:
    nasty = "0x\tab\\N\ncd\r\\"
    with database.session() as s:
        TradeRepository(s).add_batch([Trade("ETH", T0, 1, D("1"), D("1"), "B", nasty, None, None)])
    with database.session() as s:
        (row,) = TradeRepository(s).for_coin("ETH")
    assert row.hash == nasty
    assert row.buyer is None


def test_given_prepared_trades_when_stored_then_same_rows_and_bars_as_plain_ones(database) -> None:
    """TradeRepository.prepare (COPY text and bars made ahead, on another thread) stores
    exactly what add_batch stores from the trades, duplicates included."""
    from models.repositories.trades import PreparedTrades

    def trade(i: int) -> Trade:
        return Trade("ETH", 1_700_000_000_000 + i * 7_000, 500 + i, D(100 + i % 5), D("0.5"),
                     "B" if i % 2 else "A", "0x" + "ab" * 32, "0xb", "0xs")  # fmt: skip

    first, second = [trade(i) for i in range(20)], [trade(i) for i in range(10, 40)]
    with database.session() as s:
        assert (
            TradeRepository(s).add_batch(TradeRepository.prepare(first), fold_bars=True).new == 20
        )
        result = TradeRepository(s).add_batch(TradeRepository.prepare(second), fold_bars=True)
        assert (result.new, result.duplicates) == (20, 10)
        prepared_bars = BarRepository(s).bars("ETH")
        prepared = TradeRepository(s).keys()
        s.execute(text("DELETE FROM trade_snapshots"))
        s.execute(text("DELETE FROM trade_bars"))
    with database.session() as s:
        TradeRepository(s).add_batch(first, fold_bars=True)
        TradeRepository(s).add_batch(second, fold_bars=True)
        assert BarRepository(s).bars("ETH") == prepared_bars
        assert TradeRepository(s).keys() == prepared
        assert sum(b["trade_count"] for b in prepared_bars) == 40
    assert isinstance(TradeRepository.prepare(first), PreparedTrades)
