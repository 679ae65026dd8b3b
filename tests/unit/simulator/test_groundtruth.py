"""Ground-truth writing, reading, and replaying a capture."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson

from workers.simulator.groundtruth import (
    GroundTruthWriter,
    ReplayBlocks,
    iter_trades,
    read_ground_truth,
)
from workers.simulator.market import Market
from workers.simulator.universe import Universe


def record(path: Path, blocks: int = 5) -> list[dict]:
    market = Market(Universe.build(["BTC", "ETH"], ["MATIC"]), seed=3, trades_per_block=4)
    writer = GroundTruthWriter(path)
    writer.start(1, seed=3)
    sent: list[dict] = []
    for index in range(blocks):
        block = market.make_block(10_000 + index * 100)
        for coin_trades in block.by_coin.values():
            writer.trade_frame(orjson.dumps(coin_trades), len(coin_trades))
        sent.extend(block.trades)
    writer.fills([("0xabc", {"coin": "BTC", "tid": 5})])
    writer.fault("drop", 99, connections=2)
    writer.close(123)
    writer.close(456)  # idempotent
    return sent


def test_round_trip(tmp_path: Path) -> None:
    # Given a capture of 5 blocks, a fill and a fault
    path = tmp_path / "gt.jsonl"
    sent = record(path)
    # When read back
    truth = read_ground_truth(path)
    # Then every trade, in order, with the wire fields and buyer/seller
    assert [t.to_wire() for t in truth.trades] == sent
    assert truth.fills == [{"type": "fill", "user": "0xabc", "coin": "BTC", "tid": 5}]
    assert truth.faults == [{"type": "fault", "kind": "drop", "connections": 2, "time": 99}]
    assert truth.start is not None and truth.start["seed"] == 3
    assert truth.stop == {"type": "stop", "time": 123, "trades": 20}
    assert truth.trade_keys() == {(t["coin"], t["time"], t["tid"]) for t in sent}
    event = truth.trades[0].to_event()
    assert event.px == Decimal(sent[0]["px"]) and event.buyer == sent[0]["users"][0]


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "gt.jsonl"
    sent = record(path, blocks=2)
    with open(path, "ab") as handle:
        handle.write(b'{"type":"trade","coin":"BT')
    assert len(list(iter_trades(path))) == len(sent)


def test_replay_groups_blocks_and_keeps_times(tmp_path: Path) -> None:
    # Given a capture of blocks 100 ms apart
    path = tmp_path / "gt.jsonl"
    sent = record(path, blocks=4)
    replay = ReplayBlocks(path, coins=("BTC",), delisted=("MATIC",))
    # When released at 0 ms, then at 250 ms, then at the end
    first = replay.due(0.0, limit=10)
    middle = replay.due(250.0, limit=10)
    rest = replay.due(10_000.0, limit=10)
    # Then pacing follows the original gaps and the trades are the captured ones
    assert [b.time for b in first] == [10_000]
    assert [b.time for b in middle] == [10_100, 10_200]
    assert [b.time for b in rest] == [10_300]
    assert [t for b in first + middle + rest for t in b.trades] == sent
    assert replay.next_due_ms() is None
    assert {s.name for s in replay.universe.specs} == {"BTC", "ETH", "MATIC"}
    last_eth = [t for t in sent if t["coin"] == "ETH"][-1]
    assert replay.mid("ETH") == Decimal(last_eth["px"])


def legacy_trade_lines(trades: list[dict]) -> bytes:
    """One ``trade`` line per trade, as ground-truth files were written before ``trades``."""
    return b"".join(
        orjson.dumps(
            {"type": "trade", **{k: t[k] for k in ("coin", "time", "tid", "px", "sz", "side",
             "hash")}, "buyer": t["users"][0], "seller": t["users"][1]},
            option=orjson.OPT_APPEND_NEWLINE,
        )
        for t in trades
    )  # fmt: skip


def test_trade_frames_and_trade_lines_read_back_the_same(tmp_path: Path) -> None:
    # Given the same trades written as the exchange writes them (its frames' serialised
    # data, per coin) and one line per trade
    market = Market(Universe.build(["BTC", "kPEPE"]), seed=1, trades_per_block=50)
    block = market.make_block(1_000)
    frames, lines = tmp_path / "frames.jsonl", tmp_path / "lines.jsonl"
    writer = GroundTruthWriter(frames)
    for coin_trades in block.by_coin.values():
        writer.trade_frame(orjson.dumps(coin_trades), len(coin_trades))
    writer.close(2)
    stop = {"type": "stop", "time": 2, "trades": len(block.trades)}
    lines.write_bytes(legacy_trade_lines(block.trades) + orjson.dumps(stop) + b"\n")
    # Then both read back to the generated trades, and count them
    by_frames, by_lines = (read_ground_truth(p) for p in (frames, lines))
    assert sorted(t.key for t in by_frames.trades) == sorted(t.key for t in by_lines.trades)
    assert {t.key: t for t in by_frames.trades} == {t.key: t for t in by_lines.trades}
    assert sorted(t.to_wire()["tid"] for t in by_frames.trades) == sorted(
        t["tid"] for t in block.trades
    )
    assert by_frames.stop == by_lines.stop == {"type": "stop", "time": 2, "trades": 50}
