"""Recording retention: files whose hour ended more than RECORD_RETENTION_HOURS ago go;
newer ones and anything the recorder did not name stay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from runtime import recording
from runtime.clock import ManualClock
from settings import load_settings
from tasks.maintenance.recordings import prune, prune_recordings

NOW = dt.datetime(2031, 3, 20, 12, 30, tzinfo=dt.UTC)


def recording_at(directory: Path, hour: dt.datetime, ingester: str = "host-1") -> Path:
    name = recording.file_name(int(hour.timestamp()) * 1_000_000_000, ingester)
    path = directory / name
    path.write_bytes(recording.compress(recording.header_line("feed", ingester, 0)))
    return path


def test_given_recordings_of_several_hours_when_pruned_then_only_the_expired_go(
    tmp_path: Path,
) -> None:
    hours = [NOW.replace(minute=0) - dt.timedelta(hours=h) for h in range(6)]
    paths = [recording_at(tmp_path, hour) for hour in hours]
    other = tmp_path / "notes.txt"
    other.write_text("kept")
    # 12:30 less 3 h is 09:30: the 09:00 hour has not ended before it, 08:00 has
    result = prune(tmp_path, 3, ManualClock.at(NOW))
    assert sorted(result.deleted) == sorted(p.name for p in paths[4:])
    assert result.kept == 4 and result.failed == 0
    assert all(p.exists() for p in paths[:4]) and other.exists()
    assert prune(tmp_path, 3, ManualClock.at(NOW)).deleted == []  # idempotent


def test_the_task_prunes_record_dir_and_does_nothing_without_one(
    tmp_path: Path, make_app: Any
) -> None:
    old = recording_at(tmp_path, dt.datetime.now(dt.UTC) - dt.timedelta(hours=5))
    fresh = recording_at(tmp_path, dt.datetime.now(dt.UTC))
    make_app(load_settings(record_dir=tmp_path, record_retention_hours=2, data_dir=tmp_path))
    assert prune_recordings() == {"deleted": 1, "kept": 1, "failed": 0}
    assert not old.exists() and fresh.exists()
    make_app(load_settings(data_dir=tmp_path))
    assert prune_recordings()["skipped"] is True
