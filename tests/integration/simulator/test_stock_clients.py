"""Stock clients against the simulator: the official hyperliquid-python-sdk and ccxt, pointed
at its /info, start up and read trades, mids, funding history, candles, books and a wallet's
fills, and every value read is the simulator's own ground truth (its recorded trades and
fills), not merely well-shaped.

The run starts 2.5 s before an hour boundary (simulated time, via ``start_time_ms``), so a
few seconds of wall time close a 1m bar, a 1h bar and a funding hour."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from hyperliquid.info import Info

from tests.integration.simulator.conftest import http_post
from workers.simulator import GroundTruth, SimulatorHandle, read_ground_truth
from workers.simulator.candles import bucket

HOUR = 3_600_000
BTC = "BTC/USDC:USDC"


def bars(trades: Iterable[Any], interval: str) -> dict[int, dict[str, Any]]:
    """Bars the slow way from ground-truth trades: {open time: {o, h, l, c, v, n}}."""
    out: dict[int, dict[str, Any]] = {}
    for trade in trades:
        start, _ = bucket(interval, trade.time)
        px, sz = Decimal(trade.px), Decimal(trade.sz)
        bar = out.setdefault(start, {"o": px, "h": px, "l": px, "c": px, "v": Decimal(0), "n": 0})
        bar["h"], bar["l"], bar["c"] = max(bar["h"], px), min(bar["l"], px), px
        bar["v"] += sz
        bar["n"] += 1
    return out


def numbers(candle: dict[str, Any]) -> dict[str, Any]:
    return {"n": candle["n"], **{k: Decimal(candle[k]) for k in "ohlcv"}}


def wait_until_time(sim: SimulatorHandle, time_ms: int, timeout: float = 15.0) -> int:
    """Wait until the simulator has released a block stamped at or after ``time_ms``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, trades = http_post(sim.info_url, {"type": "recentTrades", "coin": "BTC"})
        if trades and trades[-1]["time"] >= time_ms:
            return int(trades[-1]["time"])
        time.sleep(0.05)
    raise AssertionError(f"simulated time never reached {time_ms}")


@pytest.fixture()
def run(start_sim: Callable[..., SimulatorHandle], tmp_path: Path) -> dict[str, Any]:
    """A simulator 2.5 s before hour H, let run past H + 1 s; its handle, H, the wallet, the
    simulated time reached before any client asked, and (after ``stop``) its ground truth."""
    hour = int(time.time() * 1000) // HOUR * HOUR  # this hour's start: already in the past
    sim = start_sim(
        coins=("BTC", "ETH"),
        users=1,
        user_share=0.3,
        replay_trades=50,
        start_time_ms=hour - 2_500,
        record_path=tmp_path / "truth.jsonl",
    )
    seen = wait_until_time(sim, hour + 1_000)
    return {"sim": sim, "hour": hour, "user": sim.exchange.config.all_users[0], "seen": seen}


def truth_of(run: dict[str, Any]) -> GroundTruth:
    run["sim"].stop()
    return read_ground_truth(run["sim"].exchange.config.record_path)


def test_official_sdk_reads_the_simulators_own_market(run: dict[str, Any]) -> None:
    sim, hour, user, seen = run["sim"], run["hour"], run["user"], run["seen"]
    # Given the SDK's Info, which asks spotMeta and meta at start-up
    info = Info(sim.base_url, skip_ws=True, timeout=5)
    assert info.name_to_coin["BTC"] == "BTC" and info.coin_to_asset["ETH"] == 1
    # When it reads what healing and a dashboard read
    meta = info.meta()
    mids = info.all_mids()
    recent = info.post("/info", {"type": "recentTrades", "coin": "BTC"})
    minute = info.candles_snapshot("BTC", "1m", hour - 2 * 60_000, hour + 60_000)
    hourly = info.candles_snapshot("ETH", "1h", hour - 2 * HOUR, hour + HOUR)
    funding = info.funding_history("BTC", hour - HOUR)
    book = info.l2_snapshot("ETH")
    fills = info.user_fills(user)
    window = info.user_fills_by_time(user, hour - 2_000, hour + 500)
    rows = sim.call(lambda ex: ex.contexts.funding_history("BTC", 0, 2**62))
    truth = truth_of(run)
    trades = {t.tid: t for t in truth.trades}
    wallet = [{k: v for k, v in f.items() if k not in ("type", "user")}
              for f in truth.fills if f["user"] == user]  # fmt: skip
    # Then the universe is the simulator's, with the delisted coin kept in place
    assert [u["name"] for u in meta["universe"]] == ["BTC", "ETH", "MATIC"]
    # And the mids are those of the coins it trades, near their traded prices
    assert set(mids) == {"BTC", "ETH"}
    for coin, mid in mids.items():
        pxs = [Decimal(t.px) for t in truth.trades if t.coin == coin]
        assert min(pxs) * Decimal("0.99") <= Decimal(mid) <= max(pxs) * Decimal("1.01")
    # And recent trades are generated trades, field for field
    assert recent and all(trades[t["tid"]].to_wire() == t for t in recent)
    # And the closed 1m bar before H and the 1h bar ending at H are exactly the trades in them
    by_minute = bars((t for t in truth.trades if t.coin == "BTC"), "1m")
    closed = [c for c in minute if c["T"] < seen]
    assert [c["t"] for c in closed] == [hour - 60_000]
    assert all(numbers(c) == by_minute[c["t"]] for c in closed)
    forming = [c for c in minute if c["T"] >= seen]
    assert forming and all(c["t"] >= hour and c["n"] <= by_minute[c["t"]]["n"] for c in forming)
    by_hour = bars((t for t in truth.trades if t.coin == "ETH"), "1h")
    assert numbers(hourly[0]) == by_hour[hour - HOUR]
    assert (hourly[0]["t"], hourly[0]["T"], hourly[0]["i"]) == (hour - HOUR, hour - 1, "1h")
    # And one funding row settled at H, the simulator's own
    assert [r["time"] for r in funding] == [hour] and funding == rows
    # And the book brackets the mid, best first, at most 20 levels a side
    bids, asks = book["levels"]
    assert 0 < len(bids) <= 20 and 0 < len(asks) <= 20
    assert Decimal(bids[0]["px"]) < Decimal(asks[0]["px"])
    assert [Decimal(b["px"]) for b in bids] == sorted(
        (Decimal(b["px"]) for b in bids), reverse=True
    )
    # And the wallet's fills are the fills the simulator generated for it, newest first
    # (the answer is the state between two blocks: every fill up to its newest one)
    assert fills
    assert fills == [f for f in reversed(wallet) if f["time"] <= fills[0]["time"]][:2000]
    assert window == [f for f in wallet if hour - 2_000 <= f["time"] <= hour + 500]
    assert window


def test_ccxt_loads_markets_and_reads_the_simulators_own_market(run: dict[str, Any]) -> None:
    sim, hour, user, seen = run["sim"], run["hour"], run["user"], run["seen"]
    # Given ccxt's hyperliquid with its API pointed at the simulator (no keys: public reads,
    # and the wallet passed as a parameter); no client-side pacing against a local server
    exchange = ccxt.hyperliquid(
        {
            "urls": {"api": {"public": sim.base_url, "private": sim.base_url}},
            "enableRateLimit": False,
            "timeout": 5_000,
        }
    )
    # When it loads markets (spotMeta, spotMetaAndAssetCtxs, metaAndAssetCtxs, perpDexs)
    markets = exchange.load_markets()
    ohlcv = exchange.fetch_ohlcv(BTC, "1m", since=hour - 2 * 60_000)
    rates = exchange.fetch_funding_rate_history(BTC, since=hour - HOUR)
    book = exchange.fetch_order_book("ETH/USDC:USDC")
    mine = exchange.fetch_my_trades(
        BTC, since=hour - 2_000, params={"user": user, "until": hour + 500}
    )
    fills = exchange.fetch_trades(BTC, params={"user": user})  # ccxt's trades: userFills
    rows = sim.call(lambda ex: ex.contexts.funding_history("BTC", 0, 2**62))
    truth = truth_of(run)
    wallet = [f for f in truth.fills if f["user"] == user and f["coin"] == "BTC"]
    # Then the perps are the simulator's, the delisted one inactive, and no spot pairs
    assert {"BTC/USDC:USDC", "ETH/USDC:USDC", "MATIC/USDC:USDC"} == set(markets)
    assert markets[BTC]["baseName"] == "BTC" and markets[BTC]["precision"]["amount"] == 1e-05
    assert markets["MATIC/USDC:USDC"]["active"] is False
    # And the closed 1m bar is exactly the trades in it (ccxt's floats of the exact strings)
    by_minute = bars((t for t in truth.trades if t.coin == "BTC"), "1m")
    closed = [row for row in ohlcv if row[0] + 59_999 < seen]
    assert [row[0] for row in closed] == [hour - 60_000]
    for t, o, h, low, c, v in closed:
        bar = by_minute[t]
        assert [o, h, low, c, v] == [float(bar[k]) for k in "ohlcv"]
    # And the funding rate history is the simulator's settled hour
    assert [(r["timestamp"], r["fundingRate"]) for r in rates] == [
        (r["time"], float(r["fundingRate"])) for r in rows
    ]
    # And the book is best-first on both sides
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    assert book["bids"] == sorted(book["bids"], reverse=True)
    # And the wallet's BTC fills in the window are the generated ones, tid for tid
    expected = [f for f in wallet if hour - 2_000 <= f["time"] <= hour + 500]
    # (ccxt sorts by time alone: trades of one block may come in another order)
    assert expected and len(mine) == len(expected)
    assert {t["id"]: (t["timestamp"], t["side"], t["amount"], t["price"]) for t in mine} == {
        str(f["tid"]): (f["time"], "buy" if f["side"] == "B" else "sell", float(f["sz"]),
                        float(f["px"]))
        for f in expected
    }  # fmt: skip
    assert fills and {t["id"] for t in fills} <= {str(f["tid"]) for f in wallet}
