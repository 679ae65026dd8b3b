"""Gap records and the completeness ledger, on SQLite and PostgreSQL (the `database` fixture)."""

from __future__ import annotations

from decimal import Decimal as D

from events import Trade
from models.db import Database
from models.repositories import GapRepository, TradeRepository

HOUR = 3_600_000
T0 = 1_787_050_800_000  # an hour boundary
WALLET = "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291"


def gap(gid: str, key: str = "ETH", from_ms: int = T0, to_ms: int | None = None, **more):
    return {
        "id": gid,
        "source": "ing-1",
        "stream": "trades",
        "key": key,
        "from_ms": from_ms,
        "to_ms": to_ms,
        "ended_by": "closed",
        **more,
    }


def trades(coin: str, times: list[int]) -> list[Trade]:
    return [
        Trade(coin, t, i + 1, D("10.5"), D("1"), "B", "0x" + "00" * 32) for i, t in enumerate(times)
    ]


def test_given_an_open_gap_when_recorded_again_and_closed_then_one_row_closed_once(
    database: Database,
) -> None:
    with database.session() as s:
        assert GapRepository(s).record([gap("g1")]) == (1, 0)
        assert GapRepository(s).record([gap("g1")]) == (0, 0)
        assert GapRepository(s).record([gap("g1", to_ms=T0 + 5_000)]) == (0, 1)
        # a second close is ignored
        assert GapRepository(s).record([gap("g1", to_ms=T0 + 9_000)]) == (0, 0)
        GapRepository(s).record([gap("g1")])  # a late open does not reopen it
        s.commit()
    with database.session() as s:
        row = GapRepository(s).get("g1")
        assert row is not None and row.to_ms == T0 + 5_000 and row.status == "open"
        assert [g.id for g in GapRepository(s).to_heal()] == ["g1"]


def test_given_a_healed_gap_when_settled_lower_then_status_stays(database: Database) -> None:
    with database.session() as s:
        repo = GapRepository(s)
        repo.record([gap("g1", to_ms=T0 + 1_000)])
        assert repo.settle("g1", "partial", "rest", 10)
        assert repo.settle("g1", "healed", "archive", 12)
        assert not repo.settle("g1", "partial", "rest", 3)
        s.commit()
    with database.session() as s:
        row = GapRepository(s).get("g1")
        assert row is not None and (row.status, row.healed_by, row.filled) == (
            "healed",
            "archive",
            12,
        )
        assert GapRepository(s).to_heal() == []


def test_given_trades_and_gaps_when_ledger_then_counts_and_seconds_per_coin_hour(
    database: Database,
) -> None:
    with database.session() as s:
        TradeRepository(s).add_batch(
            trades("ETH", [T0 + 1_000, T0 + 2_000, T0 + HOUR + 5]), fold_bars=True
        )
        TradeRepository(s).add_batch(trades("BTC", [T0 + 10]), fold_bars=True)
        repo = GapRepository(s)
        # 30 s healed inside hour 0; an open gap from the last 10 s of hour 0 into hour 1.
        repo.record([gap("h", from_ms=T0 + 60_000, to_ms=T0 + 90_000)])
        repo.settle("h", "healed", "rest", 0)
        repo.record([gap("o", from_ms=T0 + HOUR - 10_000, to_ms=T0 + HOUR + 20_000)])
        s.commit()
    with database.session() as s:
        rows = {(r.coin, r.hour_ms): r for r in GapRepository(s).ledger(T0, T0 + 2 * HOUR)}
    eth0, eth1, btc0 = rows[("ETH", T0)], rows[("ETH", T0 + HOUR)], rows[("BTC", T0)]
    assert (eth0.trades, eth0.healed_s, eth0.open_s, eth0.status) == (2, 30.0, 10.0, "open")
    assert (eth1.trades, eth1.open_s, eth1.status) == (1, 20.0, "open")
    assert (btc0.trades, btc0.status) == (1, "complete")
    with database.session() as s:
        only_btc = GapRepository(s).ledger(T0, T0 + 2 * HOUR, coin="BTC")
    assert [(r.coin, r.trades) for r in only_btc] == [("BTC", 1)]


def test_given_a_gap_still_open_when_ledger_then_it_counts_until_now(database: Database) -> None:
    with database.session() as s:
        GapRepository(s).record([gap("o", from_ms=T0 + 1_000)])
        s.commit()
    with database.session() as s:
        repo = GapRepository(s)
        rows = repo.ledger(T0, T0 + HOUR, now_ms=T0 + 61_000)
        assert repo.open_since(T0) == 1 and repo.open_since(T0 + 2 * HOUR) == 1
    assert [(r.coin, r.open_s, r.status) for r in rows] == [("ETH", 60.0, "open")]


def test_given_gaps_inside_and_across_a_window_when_covered_by_then_only_inside_ones(
    database: Database,
) -> None:
    with database.session() as s:
        repo = GapRepository(s)
        repo.record(
            [
                gap("in", from_ms=T0 + 10, to_ms=T0 + 20),
                gap("across", from_ms=T0 - 10, to_ms=T0 + 20),
                gap("open", from_ms=T0 + 30),
                gap("other", key="BTC", from_ms=T0 + 10, to_ms=T0 + 20),
            ]
        )
        s.commit()
        assert [g.id for g in repo.covered_by("trades", ["ETH"], T0, T0 + HOUR)] == ["in"]


def test_given_gaps_when_summarised_then_unfilled_counts_and_seconds_inside_the_span(
    database: Database,
) -> None:
    with database.session() as s:
        repo = GapRepository(s)
        repo.record(
            [
                gap("open", from_ms=T0 + 10_000),  # still open: counts until now
                gap("healed", from_ms=T0, to_ms=T0 + 4_000),
                gap("old", from_ms=T0 - HOUR, to_ms=T0 - HOUR + 1),  # outside the span
                {**gap("fills", key=WALLET, from_ms=T0, to_ms=T0 + 1_000), "stream": "userFills"},
            ]
        )
        repo.settle("healed", "healed", "rest", 3)
        s.commit()
    with database.session() as s:
        summary = GapRepository(s).summary(T0, T0 + 20_000)
    assert summary.unfilled == {"trades": 1, "userFills": 1}
    assert summary.seconds == {
        ("trades", "open"): 10.0,
        ("trades", "healed"): 4.0,
        ("userFills", "open"): 1.0,
    }
