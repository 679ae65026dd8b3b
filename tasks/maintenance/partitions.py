"""Day partitions created ahead of time (PostgreSQL), so no insert ever waits on DDL.

Inserts still create a missing day on demand (``SnapshotWriter``); this job makes that the
exception. On SQLite there are no partitions and the job does nothing.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task

from models.db import Database, get_database
from models.partitions import create_ahead
from runtime.clock import SYSTEM_CLOCK, Clock, utc_now
from settings import Settings

log = logging.getLogger(__name__)


def create_partitions_ahead(
    database: Database, ahead_days: int, clock: Clock = SYSTEM_CLOCK
) -> list[str]:
    """Make sure every partitioned table has days [today-1, today+ahead] (UTC); returns new
    ones."""
    with database.engine.begin() as conn:
        created = create_ahead(conn, utc_now(clock).date(), ahead=ahead_days)
    if created:
        log.info("created partitions: %s", ", ".join(created))
    return created


@shared_task(bind=True, name="hyperwatch.maintenance.create_partitions", ignore_result=True)
def create_partitions(self: Task) -> list[str]:
    """Queue maintenance. Idempotent (existing days are skipped under an advisory lock).
    Not retried: the next hourly run is the retry, and partitions exist days ahead."""
    settings: Settings = self.app.settings
    return create_partitions_ahead(get_database(settings), settings.partitions_ahead_days)
