"""Faults through the admin endpoint and on a schedule, seen from a real client."""

from __future__ import annotations

import json
import time
from collections import Counter

import websocket

from tests.integration.simulator.conftest import Client, http_get, http_post
from workers.simulator import FaultPlan


def fault(sim, body: dict) -> dict:
    status, reply = http_post(f"{sim.base_url}/_sim/fault", body)
    assert status == 200, reply
    return reply


def subscribed(clients, sim, coins=("BTC", "ETH", "SOL")) -> Client:
    client = clients(sim.ws_url)
    for coin in coins:
        client.subscribe({"type": "trades", "coin": coin})
        client.recv_until(lambda m: m["channel"] == "subscriptionResponse")
    return client


def test_drop_aborts_every_socket_without_close_frame(start_sim, clients, tmp_path) -> None:
    # Given two subscribed clients and a ground-truth file
    sim = start_sim(record_path=tmp_path / "gt.jsonl")
    first, second = subscribed(clients, sim), subscribed(clients, sim)
    # When a drop is requested
    assert fault(sim, {"kind": "drop"}) == {"kind": "drop", "connections": 2}
    # Then both sockets end like a 1006, new connections still work, and it is counted
    assert first.dropped_without_close_frame() and second.dropped_without_close_frame()
    fresh = clients(sim.ws_url)
    fresh.send({"method": "ping"})
    assert fresh.recv() == {"channel": "pong"}
    assert http_get(f"{sim.base_url}/_sim/stats")["faults"]["drop"] == 1


def test_stall_silences_data_and_pongs_then_resumes(start_sim, clients) -> None:
    # Given a client receiving trades
    sim = start_sim(rate=400.0)
    client = subscribed(clients, sim)
    client.recv_until(lambda m: m["channel"] == "trades")
    # When a 1 s stall is requested
    fault(sim, {"kind": "stall", "seconds": 1.0})
    stalled_at = time.monotonic()
    client.send({"method": "ping"})
    # Then nothing at all arrives (after what was already on the wire) for most of the stall
    silent_since = time.monotonic()
    while time.monotonic() - stalled_at < 0.8:
        try:
            client.recv_raw(timeout=0.05)
            silent_since = time.monotonic()
        except websocket.WebSocketTimeoutException:
            pass
    assert time.monotonic() - silent_since >= 0.6
    # And a new connection is not stalled
    other = clients(sim.ws_url)
    other.send({"method": "ping"})
    assert other.recv() == {"channel": "pong"}
    # And data resumes on the stalled socket afterwards (the ping was never answered)
    frame = client.recv_until(lambda m: m["channel"] in ("trades", "pong"), timeout=3)
    assert frame["channel"] == "trades"
    assert sim.stats()["frames_dropped_stalled"] > 0


def test_malformed_frames_arrive_between_real_ones(start_sim, clients) -> None:
    sim = start_sim()
    client = subscribed(clients, sim)
    client.recv_until(lambda m: m["channel"] == "trades")
    assert fault(sim, {"kind": "malformed", "count": 4}) == {"kind": "malformed", "frames": 4}
    odd = 0
    deadline = time.monotonic() + 3
    while odd < 4 and time.monotonic() < deadline:
        raw = client.recv_raw()
        try:
            message = json.loads(raw)
        except json.JSONDecodeError:
            odd += 1
            continue
        well_formed_trades = (
            message.get("channel") == "trades"
            and isinstance(message.get("data"), list)
            and all(
                isinstance(t.get("px"), str) and isinstance(t.get("tid"), int)
                for t in message["data"]
            )
        )
        if (
            message.get("channel") not in ("trades", "subscriptionResponse")
            or not well_formed_trades
        ):
            odd += 1
    assert odd == 4
    assert sim.stats()["faults"]["malformed"] == 4


def test_duplicate_resends_the_last_trades_frame(start_sim, clients) -> None:
    # Given a client that has received some BTC trades frames
    sim = start_sim(rate=100.0)
    client = subscribed(clients, sim, coins=("BTC",))
    frames: list[str] = []

    def read_trades(count: int) -> None:
        deadline = time.monotonic() + 3
        target = len(frames) + count
        while len(frames) < target and time.monotonic() < deadline:
            raw = client.recv_raw()
            if raw.startswith('{"channel":"trades"') and '"tid"' in raw:
                frames.append(raw)

    read_trades(3)
    # When a duplicate replay is requested
    assert fault(sim, {"kind": "duplicate"}) == {"kind": "duplicate", "connections": 1}
    read_trades(5)
    # Then exactly one frame arrived twice, back to back with its original
    repeats = [frame for frame, n in Counter(frames).items() if n > 1]
    assert len(repeats) == 1
    first = frames.index(repeats[0])
    assert frames[first + 1] == repeats[0]


def test_scheduled_drops_and_malformed_rate(start_sim, clients, tmp_path) -> None:
    # Given drops every 0.3 s and garbage before half the data frames
    path = tmp_path / "gt.jsonl"
    sim = start_sim(
        record_path=path,
        faults=FaultPlan(drop_every_s=0.3, malformed_rate=0.5),
    )
    client = subscribed(clients, sim)
    # Then the client is dropped within a second, having seen garbage
    frames = client.frames_until_dropped(timeout=2)
    garbage = 0
    for raw in frames:
        try:
            message = json.loads(raw)
            garbage += message.get("channel") not in ("trades", "subscriptionResponse")
        except json.JSONDecodeError:
            garbage += 1
    assert garbage >= 1
    stats = sim.stats()
    assert stats["faults"]["drop"] >= 1 and stats["faults"]["malformed"] >= 1
    sim.stop()
    kinds = {
        json.loads(line).get("kind") for line in path.read_text().splitlines() if '"fault"' in line
    }
    assert {"drop", "malformed"} <= kinds


def test_silence_stops_one_stream_until_it_is_resubscribed(start_sim, clients) -> None:
    # Given a client receiving BTC and ETH contexts every 0.2 s
    sim = start_sim(ctx_interval_s=0.2)
    client = clients(sim.ws_url)
    for coin in ("BTC", "ETH"):
        client.subscribe({"type": "activeAssetCtx", "coin": coin})
    client.recv_until(lambda m: m["channel"] == "activeAssetCtx" and m["data"]["coin"] == "ETH")
    # When ETH's context stream is silenced
    reply = fault(sim, {"kind": "silence", "channel": "activeAssetCtx", "coin": "ETH"})
    assert reply == {"kind": "silence", "topic": "ctx:ETH", "connections": 1}
    # Then for a second BTC keeps coming and ETH does not (after what was on the wire)
    time.sleep(0.1)
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        message = client.recv()
        if message["channel"] == "activeAssetCtx":
            seen[message["data"]["coin"]] += 1
    assert seen["BTC"] >= 3 and seen["ETH"] == 0
    # And unsubscribing and subscribing again brings it back
    client.send(
        {"method": "unsubscribe", "subscription": {"type": "activeAssetCtx", "coin": "ETH"}}
    )
    client.subscribe({"type": "activeAssetCtx", "coin": "ETH"})
    client.recv_until(
        lambda m: m["channel"] == "subscriptionResponse" and m["data"]["method"] == "subscribe"
    )
    client.recv_until(lambda m: m["channel"] == "activeAssetCtx" and m["data"]["coin"] == "ETH")
    client.recv_until(lambda m: m["channel"] == "activeAssetCtx" and m["data"]["coin"] == "ETH")
    assert sim.stats()["faults"]["silence"] == 1
