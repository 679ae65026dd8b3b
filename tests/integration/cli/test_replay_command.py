"""``hyperwatch replay`` as the operator runs it: --stats, bad input, playing onto a real
broker (Redis), the time window, a damaged file and unconfirmed batches."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import websocket
from click.testing import CliRunner, Result

from runtime import recording
from tests.integration.celery.support import service_env
from tests.integration.ingester.support import read_queues
from tests.support.services import RedisServer, free_port
from workers.cli import cli
from workers.replay.cli import parse_time

pytestmark = pytest.mark.integration
T0 = 1_787_052_600_000  # 2026-08-18T11:30:00Z in ms


def trades(coin: str, tid: int, time_ms: int) -> bytes:
    return orjson.dumps(
        {"channel": "trades", "data": [
            {"coin": coin, "side": "B", "px": "1.5", "sz": "2", "time": time_ms, "hash": "0xh",
             "tid": tid, "users": ["0xa", "0xb"]}
        ]}
    )  # fmt: skip


def write_recording(path: Path, lines: list[bytes], tail: bytes = b"") -> Path:
    header = recording.header_line("main", "host-7", T0 * 1_000_000)
    path.write_bytes(recording.compress(header) + recording.compress(b"".join(lines)) + tail)
    return path


def ns(ms: int) -> int:
    return ms * 1_000_000


LINES = [
    recording.marker_line(ns(T0), "0.1", "O", recording.opened_payload("ws://x", 0)),
    recording.frame_line(ns(T0 + 1), "0.1", trades("BTC", 1, T0)),
    recording.frame_line(ns(T0 + 2), "0.1", b'{"channel":"pong"}'),
    recording.frame_line(ns(T0 + 3), "0.1", b"{broken"),
    recording.marker_line(ns(T0 + 4), "0.1", "C", b"server_close"),
    recording.marker_line(ns(T0 + 5), "0.2", "O", recording.opened_payload("ws://x", 0)),
    recording.frame_line(ns(T0 + 6_000), "0.2", trades("ETH", 2, T0 + 5_000)),
    recording.marker_line(ns(T0 + 7_000), "0.2", "D", b"4"),
    recording.frame_line(ns(T0 + 8_000), "0.2", trades("ETH", 3, T0 + 7_500)),
]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["replay", *args], env=env or {})


def test_stats_describe_the_recording_and_store_nothing(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES)
    result = invoke(str(path), "--stats", "--json")
    assert result.exit_code == 0, result.output
    stats = orjson.loads(result.output)
    assert stats["frames"] == 5 and stats["malformed"] == 1 and stats["events"] == 3
    assert stats["channels"] == {"malformed": 1, "pong": 1, "trades": 3}
    assert stats["coins"] == ["BTC", "ETH"]
    assert stats["connections"] == 2 and stats["reconnects"] == 1
    assert stats["closes"] == {"server_close": 1} and stats["dropped_from_recording"] == 4
    assert stats["span_s"] == 8.0 and stats["from"].startswith("2026-")
    text = invoke(str(path), "--stats")
    assert text.exit_code == 0
    assert "frames: 5 (3 events, 1 malformed)" in text.output
    assert "connections: 2 (1 reconnects" in text.output


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"not lz4")
    for args, message in [
        ((str(junk),), "not a recording"),
        ((str(tmp_path / "missing"),), "No such file"),
    ]:
        result = invoke(*args, "--stats")
        assert result.exit_code == 2 and message in result.output, result.output
    good = write_recording(tmp_path / "r.hwrec.lz4", LINES)
    result = invoke(str(good), "--from", "yesterday")
    assert result.exit_code == 2 and "--from 'yesterday'" in result.output
    result = invoke(str(good), "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01")
    assert result.exit_code == 2 and "--to must be after --from" in result.output


def test_times_are_iso_with_or_without_a_zone_or_epoch_ms() -> None:
    assert parse_time("2026-08-18T11:30:00Z", "--from") == ns(T0)
    assert parse_time("2026-08-18T11:30:00", "--from") == ns(T0)
    assert parse_time("2026-08-18T13:30:00+02:00", "--from") == ns(T0)
    assert parse_time(str(T0), "--from") == ns(T0)
    assert parse_time(None, "--to") is None


def test_replay_publishes_persist_batches_within_the_window(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES)
    env = {"REDIS_URL": private_redis.url, "DATA_DIR": str(tmp_path)}
    result = invoke(str(path), "--max", "--no-wait", "--from", str(T0 + 5), env=env)
    assert result.exit_code == 0, result.output
    assert "replayed 2 frames (0 malformed) as replay:main" in result.output
    published = read_queues(private_redis.url)
    assert sorted(published.trade_keys()) == [("ETH", T0 + 5_000, 2), ("ETH", T0 + 7_500, 3)]
    sessions = published.sessions()
    gaps = {g["id"]: g for s in sessions.values() for g in s["gaps"]}
    assert [(g["key"], g["ended_by"]) for g in gaps.values()] == [("ETH", "recording_dropped")]


def test_a_damaged_tail_is_reported_and_unconfirmed_batches_fail_the_replay(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES, tail=b"\x04\x22\x4d\x18garbage")
    env = {"REDIS_URL": private_redis.url, "DATA_DIR": str(tmp_path)}
    result = invoke(str(path), "--speed", "1000", "--wait", "0.3", env=env)
    assert "damaged:" in result.output  # CliRunner mixes stderr in
    assert result.exit_code == 1
    assert "batch(es) not confirmed by the workers within 0 s" in result.output


def test_into_ws_serves_the_frames_to_a_subscriber_and_exits_after_lingering(
    tmp_path: Path,
) -> None:
    path = write_recording(tmp_path / "r.hwrec.lz4", LINES[:4])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "replay", str(path), "--into", "ws", "--max",
         "--port", str(port), "--linger", "0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=service_env(None, data_dir=tmp_path),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"serving the recording on ws://127.0.0.1:{port}/ws (1 coins)" in banner
        ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws", timeout=10)
        ws.send('{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}')
        received = [ws.recv() for _ in range(3)]
        assert orjson.loads(received[0])["channel"] == "subscriptionResponse"
        assert orjson.loads(received[1])["data"][0]["tid"] == 1
        assert received[2] == "{broken"  # malformed frames are played too; the pong is not
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "served 2 frames (1 recorded answers skipped, 0 recorded drops played)" in out
    # a port already taken: one line, exit 1
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        taken = subprocess.run(
            [sys.executable, "-m", "workers.cli", "replay", str(path), "--into", "ws",
             "--port", str(busy)],
            capture_output=True, text=True, timeout=30, env=service_env(None, data_dir=tmp_path),
        )  # fmt: skip
    assert taken.returncode == 1 and f"cannot listen on 127.0.0.1:{busy}" in taken.stderr
