"""A recorder whose disk fills up never slows or stops ingestion, and counts what it lost.

The recording goes to a 192 KiB tmpfs made by the test (we run as root; without the mount
the test skips locally and fails in CI, like every missing service).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.recording import ReadResult, read_records
from tests.integration.ingester.support import (
    ingest_settings,
    read_queues,
    running_ingester,
    window_keys,
)
from tests.support.services import RedisServer, unavailable
from workers.simulator import SimulatorConfig, SimulatorServer
from workers.simulator.groundtruth import read_ground_truth

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        unavailable(f"a tmpfs mount ({mounted.stderr.strip() or 'mount failed'})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def sample(ingester: object, name: str, **labels: str) -> float:
    registry = ingester.metrics.registry  # type: ignore[attr-defined]
    return float(registry.get_sample_value(name, labels) or 0.0)


def test_a_full_disk_drops_frames_from_the_recording_not_from_ingestion(
    tmp_path: Path, private_redis: RedisServer
) -> None:
    truth_path = tmp_path / "truth.jsonl"
    sim = SimulatorServer(
        SimulatorConfig(port=0, rate=2000, seed=5, record_path=truth_path)
    ).start_in_thread()
    try:
        with small_tmpfs(tmp_path / "small", "192k") as disk:
            # Given an ingester recording to a disk that fills within a second or two
            settings = ingest_settings(sim.ws_url, sim.info_url, private_redis.url, record_dir=disk)
            # When it ingests 2,000 trades/s for four seconds
            with running_ingester(settings) as ingester:
                time.sleep(4.0)
            recorder = ingester.recorder
            assert recorder is not None
            files = sorted(disk.iterdir())
            read = ReadResult()
            recorded = [r for f in files for r in read_records(f, read) if r.kind == "F"]
            frames = sum(
                sample(ingester, "hyperwatch_ingest_frames_total", channel=c)
                for c in ("trades", "allMids", "activeAssetCtx", "subscriptionResponse", "pong")
            )
    finally:
        sim.stop()
    # Then every trade the exchange sent while it was connected was published, once
    truth = read_ground_truth(truth_path)
    published = read_queues(private_redis.url)
    keys = published.trade_keys()
    assert keys and max(keys.values()) == 1
    expected = window_keys(truth.trades, published)
    assert len(expected) > 4000 and expected <= set(keys)
    # And the recording holds what fitted; the rest is counted as dropped, none unaccounted
    assert recorder.dropped_disk > 0
    assert recorder.recorded == len(recorded) > 0
    assert recorder.recorded + recorder.dropped == frames
    assert sample(ingester, "hyperwatch_ingest_record_dropped_frames_total", reason="disk") == (
        recorder.dropped_disk
    )
    assert sample(ingester, "hyperwatch_ingest_record_frames_total") == recorder.recorded
    # And what was written stays readable: a failed write is cut back to whole blocks (the
    # file given up then ends there, without the frame's end mark)
    assert read.damaged is None
