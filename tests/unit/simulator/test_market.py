"""The market generator: determinism, identities, sweeps, string numbers."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pytest

from workers.simulator.market import Market, TidSequence, sim_user_address, sim_wallet_address
from workers.simulator.schedule import GeneratedBlocks
from workers.simulator.universe import Universe, coin_spec

ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
DECIMAL_TEXT = re.compile(r"^-?\d+\.\d+$")


def universe() -> Universe:
    return Universe.build(["BTC", "ETH", "SOL"], ["MATIC"])


def trades_of(market: Market, blocks: int, start: int = 1_700_000_000_000) -> list[dict]:
    out: list[dict] = []
    for index in range(blocks):
        out.extend(market.make_block(start + index * 70).trades)
    return out


def identity(trades: list[dict]) -> list[tuple]:
    return [
        (t["coin"], t["px"], t["sz"], t["side"], t["tid"], t["hash"], tuple(t["users"]))
        for t in trades
    ]


def test_same_seed_same_trades_whatever_the_block_times() -> None:
    # Given two generators with one seed, asked for blocks at different times
    first = Market(universe(), seed=7, trades_per_block=5)
    second = Market(universe(), seed=7, trades_per_block=5)
    # When each makes 200 blocks
    a = trades_of(first, 200, start=0)
    b = trades_of(second, 200, start=1_800_000_000_000)
    # Then everything but the time is identical
    assert identity(a) == identity(b)


def test_different_seeds_differ() -> None:
    assert identity(trades_of(Market(universe(), seed=1, trades_per_block=5), 20)) != identity(
        trades_of(Market(universe(), seed=2, trades_per_block=5), 20)
    )


def test_adding_users_changes_addresses_only() -> None:
    # Given the same seed with and without simulated users
    plain = trades_of(Market(universe(), seed=3, trades_per_block=8), 100)
    users = (sim_user_address(0), sim_user_address(1))
    with_users = trades_of(
        Market(universe(), seed=3, trades_per_block=8, users=users, user_share=0.2), 100
    )
    # Then coin, price, size, side and tid are the same, and some trades involve a user
    strip = [(t["coin"], t["px"], t["sz"], t["side"], t["tid"]) for t in plain]
    assert strip == [(t["coin"], t["px"], t["sz"], t["side"], t["tid"]) for t in with_users]
    assert any(set(t["users"]) & set(users) for t in with_users)


def test_tids_are_unique_50_bit_and_nonzero() -> None:
    trades = trades_of(Market(universe(), seed=11, trades_per_block=100), 500)
    tids = [t["tid"] for t in trades]
    assert len(tids) == len(set(tids)) == 50_000
    assert all(0 < tid < 2**50 for tid in tids)


def test_tid_sequence_is_injective_on_a_long_run() -> None:
    import random

    seq = TidSequence(random.Random(0))
    values = {seq.next() for _ in range(200_000)}
    assert len(values) == 200_000


def test_block_shape_time_and_size() -> None:
    # Given a generator with 6 trades per block
    market = Market(universe(), seed=5, trades_per_block=6)
    # When a block is made at time T
    block = market.make_block(1_234)
    # Then it has 6 trades all stamped T, and by_coin partitions them in order
    assert len(block.trades) == 6
    assert {t["time"] for t in block.trades} == {1_234}
    regrouped = [t for t in block.trades if t["coin"] in block.by_coin]
    assert sorted(map(id, regrouped)) == sorted(id(t) for ts in block.by_coin.values() for t in ts)
    for coin, trades in block.by_coin.items():
        assert all(t["coin"] == coin for t in trades)


def test_sweeps_share_hash_coin_side_and_taker() -> None:
    # Given many blocks
    trades = trades_of(Market(universe(), seed=9, trades_per_block=10), 300)
    by_hash: dict[str, list[dict]] = defaultdict(list)
    for t in trades:
        by_hash[t["hash"]].append(t)
    sweeps = [ts for ts in by_hash.values() if len(ts) > 1]
    # Then multi-trade sweeps exist, and within one: same coin, side, time and taker; distinct tids
    assert sweeps
    for sweep in sweeps:
        assert len({(t["coin"], t["side"], t["time"]) for t in sweep}) == 1
        taker_index = 0 if sweep[0]["side"] == "B" else 1
        assert len({t["users"][taker_index] for t in sweep}) == 1
        assert len({t["tid"] for t in sweep}) == len(sweep)
        assert re.match(r"^0x[0-9a-f]{64}$", sweep[0]["hash"])


def test_buy_sweeps_walk_up_sell_sweeps_walk_down() -> None:
    trades = trades_of(Market(universe(), seed=4, trades_per_block=10), 200)
    by_hash: dict[str, list[Decimal]] = defaultdict(list)
    side: dict[str, str] = {}
    for t in trades:
        by_hash[t["hash"]].append(Decimal(t["px"]))
        side[t["hash"]] = t["side"]
    for h, prices in by_hash.items():
        assert prices == (sorted(prices) if side[h] == "B" else sorted(prices, reverse=True))


def test_numbers_are_exact_strings_on_the_tick_grid() -> None:
    u = universe()
    trades = trades_of(Market(u, seed=2, trades_per_block=20), 100)
    for t in trades:
        assert isinstance(t["px"], str) and DECIMAL_TEXT.match(t["px"]), t["px"]
        assert isinstance(t["sz"], str) and DECIMAL_TEXT.match(t["sz"]), t["sz"]
        assert isinstance(t["tid"], int) and isinstance(t["time"], int)
        spec = u.get(t["coin"])
        assert spec is not None and not spec.delisted
        assert Decimal(t["px"]) == Decimal(t["px"]).quantize(Decimal(1).scaleb(-spec.px_decimals))
        assert Decimal(t["sz"]) > 0
        assert Decimal(t["sz"]) == Decimal(t["sz"]).quantize(Decimal(1).scaleb(-spec.sz_decimals))
        assert t["side"] in ("B", "A")


def test_users_are_buyer_then_seller_lowercase_and_distinct() -> None:
    trades = trades_of(Market(universe(), seed=8, trades_per_block=20), 100)
    for t in trades:
        buyer, seller = t["users"]
        assert ADDRESS.match(buyer) and ADDRESS.match(seller)
        assert buyer != seller


def test_delisted_coin_never_trades_and_has_no_book() -> None:
    market = Market(universe(), seed=1, trades_per_block=20)
    assert all(t["coin"] != "MATIC" for t in trades_of(market, 100))
    assert market.mid("MATIC") is None
    assert market.best_bid_ask("MATIC") is None


def test_mid_sits_between_bid_and_ask() -> None:
    market = Market(universe(), seed=1, trades_per_block=20)
    trades_of(market, 50)
    touch = market.best_bid_ask("ETH")
    mid = market.mid("ETH")
    assert touch is not None and mid is not None
    assert touch[0] < mid < touch[1]


def test_volumes_are_sums_of_generated_trades() -> None:
    market = Market(universe(), seed=6, trades_per_block=20)
    trades = trades_of(market, 50)
    sol = [t for t in trades if t["coin"] == "SOL"]
    base, notional = market.volumes("SOL")
    assert base == sum(Decimal(t["sz"]) for t in sol)
    assert notional == sum(Decimal(t["sz"]) * Decimal(t["px"]) for t in sol)


def test_generated_blocks_follow_the_schedule_and_origin() -> None:
    # Given a source releasing one block every 100 ms from origin 5000
    source = GeneratedBlocks(
        Market(universe(), seed=1, trades_per_block=2), block_ms=100.0, origin_ms=5_000
    )
    # When asked at elapsed 0, then 250 ms
    first = source.due(0.0, limit=10)
    later = source.due(250.0, limit=10)
    # Then block 0 comes at once, blocks 1-2 by 250 ms, stamped origin + k * 100
    assert [b.time for b in first] == [5_000]
    assert [b.time for b in later] == [5_100, 5_200]
    assert source.next_due_ms() == 300.0


def test_generated_blocks_respect_the_limit() -> None:
    source = GeneratedBlocks(
        Market(universe(), seed=1, trades_per_block=2), block_ms=1.0, origin_ms=0
    )
    assert len(source.due(1_000.0, limit=7)) == 7


def test_trades_per_block_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Market(universe(), seed=1, trades_per_block=0)


def test_sim_user_addresses_are_stable_and_valid() -> None:
    assert sim_user_address(0) == sim_user_address(0)
    assert sim_user_address(0) != sim_user_address(1)
    assert ADDRESS.match(sim_user_address(3))


def listed_later(seed: int, after_blocks: int, total: int) -> list[dict]:
    u = universe()
    market = Market(u, seed=seed, trades_per_block=5)
    out = trades_of(market, after_blocks)
    u.add(coin_spec("XRP"))
    market.add_coin(u.get("XRP"))  # type: ignore[arg-type]
    return out + trades_of(market, total - after_blocks)


def test_a_coin_listed_later_trades_from_its_block_on_and_the_same_seed_repeats_it() -> None:
    # Given a market that lists XRP after 50 blocks
    trades = listed_later(seed=3, after_blocks=50, total=250)
    # Then nothing before the listing changed, XRP trades after it, and a rerun is identical
    plain = trades_of(Market(universe(), seed=3, trades_per_block=5), 50)
    assert identity(trades[: len(plain)]) == identity(plain)
    assert all(t["coin"] != "XRP" for t in trades[: len(plain)])
    assert any(t["coin"] == "XRP" for t in trades[len(plain) :])
    assert identity(listed_later(seed=3, after_blocks=50, total=250)) == identity(trades)


def test_a_coin_removed_stops_trading() -> None:
    market = Market(universe(), seed=3, trades_per_block=5)
    market.remove_coin("ETH")
    assert all(t["coin"] != "ETH" for t in trades_of(market, 200))


def test_adding_wallets_changes_addresses_only_and_they_trade() -> None:
    # Given the same seed with and without 50 active wallets (and with users, as in a run)
    users = (sim_user_address(0),)
    plain = trades_of(Market(universe(), seed=3, trades_per_block=8, users=users), 100)
    wallets = tuple(sim_wallet_address(i) for i in range(50))
    with_wallets = trades_of(
        Market(universe(), seed=3, trades_per_block=8, users=users, wallets=wallets), 100
    )
    # Then coin, price, size, side, tid and the users' sides are the same …
    strip = [(t["coin"], t["px"], t["sz"], t["side"], t["tid"], t["hash"]) for t in plain]
    assert strip == [
        (t["coin"], t["px"], t["sz"], t["side"], t["tid"], t["hash"]) for t in with_wallets
    ]
    assert [users[0] in t["users"] for t in plain] == [users[0] in t["users"] for t in with_wallets]
    # … and the wallets are buyers and sellers, most of them in a few hundred trades
    seen = {a for t in with_wallets for a in t["users"]} & set(wallets)
    assert len(seen) > 40
    assert all(t["users"][0] != t["users"][1] for t in with_wallets)


def test_sim_wallet_addresses_are_stable_valid_and_not_users() -> None:
    wallets = [sim_wallet_address(i) for i in range(100)]
    assert all(ADDRESS.match(w) for w in wallets) and len(set(wallets)) == 100
    assert sim_wallet_address(0) == sim_wallet_address(0)
    assert not set(wallets) & {sim_user_address(i) for i in range(100)}
