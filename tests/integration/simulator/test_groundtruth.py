"""The ground-truth file against what a connected client actually received; replay; determinism."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from tests.integration.simulator.conftest import Client
from workers.simulator import read_ground_truth

COINS = ("BTC", "ETH", "SOL")


def collect_until_closed(client: Client) -> tuple[list[dict], int | None]:
    """Every trade in every trades frame until the server closes; and the close code."""
    trades: list[dict] = []
    client.ws.settimeout(10)
    while True:
        opcode, frame = client.ws.recv_data_frame(True)
        if opcode == 0x8:  # close
            code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
            return trades, code
        if opcode == 0x1:
            message = json.loads(frame.data)
            if message["channel"] == "trades":
                trades.extend(message["data"])


def test_ground_truth_equals_what_a_connected_client_received(start_sim, clients, tmp_path) -> None:
    # Given a recording simulator whose replay window covers everything before the subscribe
    path = tmp_path / "gt.jsonl"
    sim = start_sim(record_path=path, rate=500.0, replay_trades=5000)
    client = clients(sim.ws_url)
    for coin in COINS:
        client.subscribe({"type": "trades", "coin": coin})
    # When the client stays connected while trades flow and the server shuts down cleanly
    while sim.stats()["trades_generated"] < 300:
        time.sleep(0.02)
    stopper = threading.Thread(target=sim.stop)
    stopper.start()
    received, close_code = collect_until_closed(client)
    stopper.join()
    # Then it got a close frame (going away), and exactly the recorded trades: same
    # count, same identities, same fields, none twice
    assert close_code == 1001
    truth = read_ground_truth(path)
    assert truth.stop is not None and truth.stop["trades"] == len(truth.trades) >= 300
    keys = Counter((t["coin"], t["time"], t["tid"]) for t in received)
    assert max(keys.values()) == 1
    assert set(keys) == truth.trade_keys()
    by_key = {t.key: t.to_wire() for t in truth.trades}
    assert all(by_key[(t["coin"], t["time"], t["tid"])] == t for t in received)


def test_replay_serves_a_capture_again(start_sim, clients, tmp_path) -> None:
    # Given a capture of a short run
    path = tmp_path / "gt.jsonl"
    recorder = start_sim(record_path=path, rate=300.0, seed=5)
    while recorder.stats()["trades_generated"] < 100:
        time.sleep(0.02)
    recorder.stop()
    recorded = read_ground_truth(path).trades
    # When another simulator replays it to a client subscribed from the start
    replayer = start_sim(replay_path=path, replay_trades=5000)
    client = clients(replayer.ws_url)
    for coin in COINS:
        client.subscribe({"type": "trades", "coin": coin})
    deadline = time.monotonic() + 10
    while replayer.stats()["trades_generated"] < len(recorded) and time.monotonic() < deadline:
        time.sleep(0.02)
    stopper = threading.Thread(target=replayer.stop)
    stopper.start()
    received, _code = collect_until_closed(client)
    stopper.join()
    # Then it receives the captured trades, with their original times and ids
    assert sorted((t["coin"], t["time"], t["tid"]) for t in received) == sorted(
        t.key for t in recorded
    )


def test_same_seed_and_start_time_give_the_same_trades(start_sim, tmp_path) -> None:
    # Given two runs with one seed and one --start-time
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path in paths:
        sim = start_sim(record_path=path, seed=42, start_time_ms=1_700_000_000_000, rate=1000.0)
        while sim.stats()["trades_generated"] < 200:
            time.sleep(0.02)
        sim.stop()
    a, b = (read_ground_truth(p).trades for p in paths)
    # Then the common prefix is identical, times included
    common = min(len(a), len(b))
    assert common >= 200
    assert a[:common] == b[:common]
    assert a[0].time == 1_700_000_000_000
