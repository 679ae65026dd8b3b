"""Funding history: one row per coin per settled hour, at the rate the wallets are charged."""

from __future__ import annotations

from decimal import Decimal

from workers.simulator.config import SimulatorConfig
from workers.simulator.contexts import MAX_FUNDING_ROWS, AssetContexts
from workers.simulator.exchange import Exchange
from workers.simulator.market import Market
from workers.simulator.money import quantize
from workers.simulator.universe import Universe

HOUR = 3_600_000
H0 = 1_787_050_800_000  # an hour boundary


def contexts(kept: int = 2_000) -> AssetContexts:
    market = Market(Universe.build(["BTC", "ETH"], ["MATIC"]), seed=1, trades_per_block=10)
    market.make_block(H0)
    return AssetContexts(market, seed=1, funding_kept=kept)


def test_settled_hours_become_rows_with_the_rate_and_premium_of_that_moment() -> None:
    ctxs = contexts()
    premiums = []
    for hour in range(1, 4):
        for _ in range(7):
            ctxs.step()
        ctx = ctxs.ctx("BTC")
        assert ctx is not None
        premiums.append(ctx["premium"])
        rates = ctxs.settle_funding(H0 + hour * HOUR + 12)
        assert rates["BTC"] == Decimal(ctx["funding"])
        assert set(rates) == {"BTC", "ETH"}  # the delisted coin pays no funding
    rows = ctxs.funding_history("BTC", 0, H0 + 10 * HOUR)
    assert [r["time"] for r in rows] == [H0 + h * HOUR + 12 for h in (1, 2, 3)]
    assert [r["premium"] for r in rows] == premiums
    assert all(list(r) == ["coin", "fundingRate", "premium", "time"] for r in rows)
    assert all(Decimal(r["fundingRate"]) == Decimal("0.0000125") + Decimal(r["premium"]) / 8
               for r in rows)  # fmt: skip
    assert ctxs.funding_history("MATIC", 0, H0 + 10 * HOUR) == []
    assert ctxs.funding_history("DOGE", 0, H0 + 10 * HOUR) == []


def test_range_is_inclusive_capped_and_pages_by_start_time() -> None:
    ctxs = contexts(kept=1_200)
    for hour in range(1, 1_101):
        ctxs.settle_funding(H0 + hour * HOUR)
    # Inclusive at both ends
    assert [r["time"] for r in ctxs.funding_history("ETH", H0 + 5 * HOUR, H0 + 7 * HOUR)] == [
        H0 + 5 * HOUR,
        H0 + 6 * HOUR,
        H0 + 7 * HOUR,
    ]
    # At most 500 rows, oldest first; the last row's time starts the next page
    pages: list[list[int]] = []
    start = 0
    while True:
        page = [r["time"] for r in ctxs.funding_history("ETH", start, H0 + 10_000 * HOUR)]
        assert len(page) <= MAX_FUNDING_ROWS and page == sorted(page)
        pages.append(page)
        if len(page) < MAX_FUNDING_ROWS:
            break
        start = page[-1] + 1
    times = [t for page in pages for t in page]
    assert times == [H0 + h * HOUR for h in range(1, 1_101)]


def test_history_is_bounded() -> None:
    ctxs = contexts(kept=24)
    for hour in range(1, 101):
        ctxs.settle_funding(H0 + hour * HOUR)
    rows = ctxs.funding_history("BTC", 0, H0 + 1_000 * HOUR)
    assert len(rows) == 24 and rows[0]["time"] == H0 + 77 * HOUR


def test_exchange_settles_each_hour_once_at_the_rate_it_charges() -> None:
    # Given an exchange with one busy wallet, two seconds before an hour ends
    config = SimulatorConfig(port=0, users=1, user_share=0.5, start_time_ms=H0 - 2_000)
    exchange = Exchange(config)
    market = exchange.source.market  # type: ignore[attr-defined]
    account = exchange.ledger.accounts[config.all_users[0]]
    times = [H0 - 2_000 + index * 70 for index in range(60)]
    first_of_hour = min(t for t in times if t >= H0)
    rates = {s.name: exchange.contexts.funding(s.name) for s in exchange.universe.listed}
    expected: dict[str, Decimal] = {}
    # When blocks run across the boundary and on into the new hour
    for time_ms in times:
        block = market.make_block(time_ms)
        if time_ms == first_of_hour:
            # (what the charge will be: the position held then, at the oracle price then)
            for coin, position in account.positions.items():
                oracle = exchange.contexts.oracle_px(coin)
                assert oracle is not None
                expected[coin] = quantize(position.szi * oracle * rates[coin], 6)
        exchange.emit(block)
    # Then exactly one row per coin, stamped with the first block of the new hour
    for coin, rate in rates.items():
        rows = exchange.contexts.funding_history(coin, 0, H0 + HOUR)
        assert [r["time"] for r in rows] == [first_of_hour]
        assert Decimal(rows[0]["fundingRate"]) == rate
    # And the wallet was charged once, at those rates, on the positions it held then
    assert expected and any(expected.values())
    for coin, charge in expected.items():
        assert account.positions[coin].funding_all_time == charge
