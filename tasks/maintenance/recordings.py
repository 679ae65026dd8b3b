"""Retention of the ingester's recordings: files in RECORD_DIR older than
``RECORD_RETENTION_HOURS`` go.

A recording's hour is read from its name (``runtime/recording.py``), never from its mtime: a
copied or restored file keeps its age. Only names the recorder writes are considered, so
nothing else an operator keeps in the directory is touched. A file goes once its whole hour
is older than the cutoff. The worker that runs this job must see RECORD_DIR (the same
volume as the ingester: docs/OPERATIONS.md, "Recording and replay"); where it is unset or
missing, the job does nothing and says so.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from runtime import recording
from runtime.clock import SYSTEM_CLOCK, Clock, utc_now

log = logging.getLogger(__name__)


@dataclass
class PruneResult:
    deleted: list[str] = field(default_factory=list)
    kept: int = 0
    failed: int = 0


def prune(directory: Path, keep_hours: int, clock: Clock = SYSTEM_CLOCK) -> PruneResult:
    """Delete the recordings in ``directory`` whose hour ended ``keep_hours`` ago or more."""
    cutoff = utc_now(clock) - dt.timedelta(hours=keep_hours)
    result = PruneResult()
    for path in sorted(directory.iterdir()):
        hour = recording.hour_of(path)
        if hour is None or not path.is_file():
            continue
        if hour + dt.timedelta(hours=1) > cutoff:
            result.kept += 1
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue  # another run took it
        except OSError as exc:
            result.failed += 1
            log.error("recording retention: cannot delete %s: %s", path, exc)
            continue
        result.deleted.append(path.name)
    if result.deleted:
        log.info(
            "recording retention: deleted %d file(s) older than %d h in %s",
            len(result.deleted), keep_hours, directory,
        )  # fmt: skip
    return result


@shared_task(bind=True, name="hyperwatch.maintenance.prune_recordings", ignore_result=True)
def prune_recordings(self: Task) -> dict[str, Any]:
    """Queue maintenance, hourly while RECORD_DIR is set. Idempotent (a deleted file is
    gone); not retried: the next run is the retry."""
    settings = self.app.settings
    directory = settings.record_dir
    if directory is None or not directory.is_dir():
        log.warning("recording retention: RECORD_DIR %s is not a directory here", directory)
        return {"deleted": 0, "kept": 0, "failed": 0, "skipped": True}
    result = prune(directory, settings.record_retention_hours)
    return {"deleted": len(result.deleted), "kept": result.kept, "failed": result.failed}
