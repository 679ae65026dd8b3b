"""The player: recorded frames through the live pipeline, persist targets only, the live gap
semantics, and ids that make a second replay an upsert of the first."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from runtime.clock import ManualClock
from runtime.metrics import Metrics
from runtime.recording import Record
from tests.unit.ingester import frames
from workers.ingester.broker import Target
from workers.replay import cli
from workers.replay.player import Pacer, Player

T0 = 1_787_052_600_000  # ms


def trades(coin: str, tid: int, time_ms: int) -> bytes:
    return orjson.dumps(
        {"channel": "trades", "data": [
            {"coin": coin, "side": "B", "px": "1.5", "sz": "2", "time": time_ms, "hash": "0xh",
             "tid": tid, "users": ["0xa", "0xb"]}
        ]}
    )  # fmt: skip


def rec(ms: int, conn: str, kind: str, payload: bytes = b"") -> Record:
    return Record(ms * 1_000_000, conn, kind, payload)  # type: ignore[arg-type]


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, target: Target, body: bytes, argsrepr: str) -> None:
        self.messages.append((target.task, body))

    def tasks(self) -> list[str]:
        return [task for task, _ in self.messages]

    def sessions(self) -> list[dict[str, Any]]:
        return [orjson.loads(b) for t, b in self.messages if t == "hyperwatch.persist.session"]

    def trade_tids(self) -> list[int]:
        return [
            e[2]
            for t, b in self.messages
            if t == "hyperwatch.persist.trades"
            for e in orjson.loads(b)["events"]
        ]


def play(records: list[Record]) -> tuple[Sent, Player]:
    sent = Sent()
    player = Player("feed", sent, Metrics(), batch_size=1000, batch_ms=100, dedup_size=1000)
    player.play(records)
    return sent, player


DROP_AND_BACK = [
    rec(T0, "ing/0.1", "O", b'{"url":"ws://x","socket":0}'),
    rec(T0 + 1, "ing/0.1", "F", trades("BTC", 1, T0)),
    rec(T0 + 2, "ing/0.1", "F", frames.ALL_MIDS),
    rec(T0 + 3, "ing/0.1", "F", frames.ASSET_CTX),
    rec(T0 + 4, "ing/0.1", "F", b"{not json"),
    rec(T0 + 500, "ing/0.1", "C", b"server_close"),
    rec(T0 + 900, "ing/0.2", "O", b'{"url":"ws://x","socket":0}'),
    rec(T0 + 901, "ing/0.2", "F", trades("BTC", 1, T0)),  # the exchange's replay: a duplicate
    rec(T0 + 902, "ing/0.2", "F", trades("BTC", 2, T0 + 800)),
]


def test_frames_become_persist_batches_only_and_a_recorded_close_is_the_live_gap() -> None:
    sent, player = play(DROP_AND_BACK)
    tasks = set(sent.tasks())
    assert "hyperwatch.alerts.evaluate" not in tasks  # old prices evaluate no alert
    assert {"hyperwatch.persist.trades", "hyperwatch.persist.asset_contexts"} <= tasks
    assert sorted(sent.trade_tids()) == [1, 2]  # the replayed duplicate dropped by dedup
    result = player.result
    assert result.frames == 6 and result.malformed == 1 and result.trades == 2
    # the close opened a gap on BTC from its last trade, closed by the first new one
    gaps = {g["id"]: g for s in sent.sessions() for g in s["gaps"]}
    (gap,) = gaps.values()
    assert (gap["key"], gap["from_ms"], gap["to_ms"], gap["ended_by"]) == (
        "BTC", T0, T0 + 800, "server_close",
    )  # fmt: skip
    assert {s["source"] for s in sent.sessions()} == {"replay:feed"}
    assert len({s["id"] for s in sent.sessions()}) == 2  # one per recorded connection


def test_replaying_twice_sends_the_same_ids() -> None:
    first, _ = play(DROP_AND_BACK)
    second, _ = play(DROP_AND_BACK)
    assert first.sessions() == second.sessions()
    assert first.messages == second.messages


def test_a_hole_in_the_recording_is_a_gap_and_the_end_of_the_input_is_not() -> None:
    sent, _ = play(
        [
            rec(T0, "ing/0.1", "F", trades("ETH", 1, T0)),  # no O seen: connected implicitly
            rec(T0 + 10, "ing/0.1", "D", b"12"),
            rec(T0 + 20, "ing/0.1", "F", trades("ETH", 2, T0 + 15)),
            rec(T0 + 30, "ing/0.1", "F", trades("ETH", 3, T0 + 25)),
        ]
    )
    gaps = {g["id"]: g for s in sent.sessions() for g in s["gaps"]}
    assert [(g["from_ms"], g["to_ms"], g["ended_by"]) for g in gaps.values()] == [
        (T0, T0 + 15, "recording_dropped")
    ]
    assert all(s["ended_at"] is None for s in sent.sessions()[-1:])


def test_a_connection_opened_without_the_previous_close_ends_it_as_a_crash() -> None:
    sent, _ = play(
        [
            rec(T0, "a/0.1", "F", trades("SOL", 1, T0)),
            rec(T0 + 10, "b/0.1", "O", b"{}"),  # the next process's first connection
            rec(T0 + 20, "b/0.1", "F", trades("SOL", 2, T0 + 15)),
        ]
    )
    gaps = {g["id"]: g for s in sent.sessions() for g in s["gaps"]}.values()  # newest wins
    assert {(g["from_ms"], g["to_ms"], g["ended_by"]) for g in gaps} == {
        (T0, T0 + 15, "recording_ended")
    }


def test_a_second_socket_gets_its_own_pipeline_and_source() -> None:
    sent, _ = play(
        [
            rec(T0, "ing/0.1", "F", trades("BTC", 1, T0)),
            rec(T0 + 1, "ing/1.1", "F", trades("ETH", 1, T0)),
        ]
    )
    assert {s["source"] for s in sent.sessions()} == {"replay:feed", "replay:feed.c1"}


def test_the_pacer_holds_the_recorded_pace_times_the_speed() -> None:
    clock = ManualClock()
    slept: list[float] = []
    pacer = Pacer(2.0, clock, slept.append)
    pacer.wait(0)
    pacer.wait(2_000_000_000)  # 2 s recorded = 1 s at 2x
    clock.advance(5)
    pacer.wait(4_000_000_000)  # already late: no sleep
    assert slept == [1.0]
    fast: list[float] = []
    Pacer(None, clock, fast.append).wait(10**18)
    assert fast == []


class FlakyBroker:
    """A BrokerClient stand-in: ``errors`` as the real one exposes them, failing ``fail`` times."""

    errors = (ConnectionError,)

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.sent: list[str] = []

    def send(self, target: Target, body: bytes, argsrepr: str) -> str:
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("broker away")
        self.sent.append(target.task)
        return "id"


def test_the_sender_retries_a_broker_outage_then_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.time, "sleep", lambda _s: None)
    target = Target("hyperwatch.persist.trades", "ingest")
    broker = FlakyBroker(fail=3)
    cli.Sender(broker)(target, b"{}", "x")  # type: ignore[arg-type]
    assert broker.sent == ["hyperwatch.persist.trades"]
    with pytest.raises(cli.ReplayFailed, match="broker unreachable"):
        cli.Sender(FlakyBroker(fail=cli.SEND_ATTEMPTS))(target, b"{}", "x")  # type: ignore[arg-type]
