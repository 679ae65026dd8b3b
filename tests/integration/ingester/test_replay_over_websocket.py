"""``hyperwatch replay --into ws``: a real ingester on the recorded frames.

Given a recording of BTC trades and contexts with a recorded drop in the middle; when a
replay server plays it at 4x and an ingester connects to it; then the ingester publishes
every recorded trade once, reconnects where the recording dropped and records that gap.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websocket

from runtime import recording
from tests.integration.ingester.support import ingest_settings, read_queues, running_ingester
from tests.support.services import RedisServer
from workers.replay.cli import records
from workers.replay.player import Pacer
from workers.replay.server import ReplayServer, ServeResult

pytestmark = pytest.mark.integration
T0 = 1_787_052_600_000


def trade_frame(tid: int, time_ms: int) -> bytes:
    return orjson.dumps(
        {"channel": "trades", "data": [
            {"coin": "BTC", "side": "B", "px": "100.5", "sz": "0.1", "time": time_ms,
             "hash": "0xh", "tid": tid, "users": ["0xa", "0xb"]}
        ]}
    )  # fmt: skip


def ctx_frame() -> bytes:
    ctx = {"funding": "0.0001", "openInterest": "10", "prevDayPx": "99", "dayNtlVlm": "1000",
           "premium": "0", "oraclePx": "100", "markPx": "100", "midPx": "100.5",
           "impactPxs": ["100", "101"], "dayBaseVlm": "10"}  # fmt: skip
    return orjson.dumps({"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": ctx}})


def write_recording(path: Path) -> list[int]:
    lines = [
        recording.marker_line(T0 * 10**6, "0.1", "O", b"{}"),
        recording.frame_line(T0 * 10**6, "0.1", b'{"channel":"subscriptionResponse","data":{}}'),
    ]
    tids = []
    for i in range(40):  # 4 s of recorded time, a trade and a context every 100 ms
        at = T0 + 100 * (i + 1)
        if i == 20:
            lines.append(recording.marker_line(at * 10**6, "0.1", "C", b"server_close"))
            lines.append(recording.marker_line(at * 10**6, "0.2", "O", b"{}"))
        conn = "0.1" if i < 20 else "0.2"
        lines.append(recording.frame_line(at * 10**6, conn, trade_frame(1000 + i, at)))
        lines.append(recording.frame_line(at * 10**6, conn, ctx_frame()))
        tids.append(1000 + i)
    header = recording.header_line("main", "rec-host", T0 * 10**6)
    path.write_bytes(recording.compress(header) + recording.compress(b"".join(lines)))
    return tids


def test_an_ingester_on_the_replay_server_publishes_the_recording_and_its_gap(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    path = tmp_path / "r.hwrec.lz4"
    tids = write_recording(path)
    server = ReplayServer(records([path], None, None, []), ["BTC"], Pacer(4.0), linger_s=1.0)
    box: dict[str, Any] = {}
    started = threading.Event()

    def serve() -> None:
        async def main() -> ServeResult:
            await server.start()
            started.set()
            return await server.play(asyncio.Event())

        box["result"] = asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    settings = ingest_settings(
        server.ws_url, server.info_url, private_redis.url, coins=["BTC"],
        ingester_name="replay-check",
    )  # fmt: skip
    with running_ingester(settings):
        thread.join(30)
        time.sleep(0.3)
    assert not thread.is_alive()
    result: ServeResult = box["result"]
    assert result.frames == 80 and result.skipped == 1 and result.drops == 1
    published = read_queues(private_redis.url)
    assert sorted(tid for (_c, _t, tid), n in published.trade_keys().items() if n == 1) == tids
    gaps = {g["id"]: g for s in published.sessions().values() for g in s["gaps"]}
    dropped = [g for g in gaps.values() if g["ended_by"] == "closed"]
    assert [(g["key"], g["from_ms"], g["to_ms"]) for g in dropped] == [
        ("BTC", T0 + 2000, T0 + 2100)
    ]


def test_the_replay_server_answers_a_clients_own_messages_and_only_meta(tmp_path: Path) -> None:
    path = tmp_path / "r.hwrec.lz4"
    write_recording(path)
    server = ReplayServer(records([path], None, None, []), ["BTC"], Pacer(None), linger_s=0.5)
    stop_box: dict[str, Any] = {}
    started = threading.Event()

    def serve() -> None:
        async def main() -> ServeResult:
            stop = asyncio.Event()
            stop_box["stop"], stop_box["loop"] = stop, asyncio.get_running_loop()
            await server.start()
            started.set()
            return await server.play(stop)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    meta = httpx.post(server.info_url, json={"type": "meta"}, timeout=5)
    assert meta.json() == {"universe": [{"name": "BTC", "szDecimals": 0, "maxLeverage": 1}]}
    assert httpx.post(server.info_url, json={"type": "recentTrades"}, timeout=5).status_code == 400
    assert httpx.post(server.info_url, content=b"{junk", timeout=5).status_code == 400
    ws = websocket.create_connection(server.ws_url, timeout=5)
    ws.send("not json")
    ws.send("[1]")
    ws.send('{"method":"ping"}')
    assert ws.recv() == '{"channel":"pong"}'
    sub = {"type": "trades", "coin": "BTC"}
    ws.send(orjson.dumps({"method": "unsubscribe", "subscription": sub}).decode())
    ack = orjson.loads(ws.recv())
    assert ack == {
        "channel": "subscriptionResponse",
        "data": {"method": "unsubscribe", "subscription": sub},
    }
    ws.close()
    stop_box["loop"].call_soon_threadsafe(stop_box["stop"].set)
    thread.join(10)
    assert not thread.is_alive()
