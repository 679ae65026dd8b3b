"""Retention: what is older than a table's ``RETENTION_*_DAYS`` goes, cheaply and in bounds.

- PostgreSQL, day-partitioned snapshot tables: whole partitions whose day ended before the
  cutoff are dropped — no row-by-row delete, no bloat, no vacuum debt. The drop waits for
  its lock at most 5 s (a DROP queued behind a long insert would otherwise
  block every insert queued behind *it*); a run that times out is retried by the next one.
  With ``COLD_DIR`` set, each day is first exported to Parquet and verified
  (domain/coldtier/export.py); a day whose export fails keeps its partition, is recorded
  ``failed`` (health reports it) and is tried again by the next run.
- Everything else (and every table on SQLite): deletes in chunks of ``chunk_size`` rows by
  primary key, each chunk its own short transaction, until nothing old is left or
  ``RETENTION_MAX_RUNTIME_S`` is spent. A run stopped by the cap reports
  ``complete=False``; the next run continues where it stopped.

Only rows that are finished with are deleted: notifications only once ``sent``, ``failed``,
``suppressed`` or ``digested`` (a ``pending`` one belongs to the outbox sweeper), sessions
only once they ended (or never will: started before the cutoff without an end), gaps only
once settled (an open one is still to be filled, and the completeness ledger shows it).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from celery import Task, shared_task
from sqlalchemy import ColumnElement, Table, delete, or_, select, text, tuple_

from domain.coldtier.export import ExportFailed, export_and_drop
from models import PARTITIONED_TABLES, Base
from models.db import Database, get_database
from models.partitions import days_older_than, drop_older_than, partition_name
from models.repositories.snapshots import forget_known_partitions
from runtime.clock import SYSTEM_CLOCK, Clock, utc_now
from settings import Settings

log = logging.getLogger(__name__)

# How long a partition drop may wait for its lock before giving up until the next run.
_LOCK_TIMEOUT = text("SET LOCAL lock_timeout = '5s'")
DAY = dt.timedelta(days=1)


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


@dataclass(frozen=True)
class Policy:
    """How one table ages out: its clock column and what else a deletable row must be."""

    table: str
    days_setting: str
    column: str
    unit: Literal["ms", "datetime"]
    finished: Callable[[Table, Any], ColumnElement[bool]] | None = None

    def days(self, settings: Settings) -> int:
        return int(getattr(settings, self.days_setting))


def _notification_done(t: Table, _cutoff: Any) -> ColumnElement[bool]:
    return t.c.status.in_(("sent", "failed", "suppressed", "digested"))


def _session_done(t: Table, cutoff: Any) -> ColumnElement[bool]:
    return or_(t.c.ended_at.is_(None), t.c.ended_at < cutoff)


def _gap_settled(t: Table, _cutoff: Any) -> ColumnElement[bool]:
    # An open gap is a hole still to fill (REST, the archive import): it stays, however old.
    return t.c.status != "open"


POLICIES: dict[str, Policy] = {
    p.table: p
    for p in (
        Policy("trade_snapshots", "retention_trades_days", "time", "ms"),
        Policy("asset_context_snapshots", "retention_asset_contexts_days", "time", "ms"),
        Policy("position_snapshots", "retention_positions_days", "time", "ms"),
        Policy("trade_bars", "retention_trade_bars_days", "minute", "ms"),
        Policy("user_fills", "retention_fills_days", "time", "ms"),
        Policy("health_metrics", "retention_health_metrics_days", "time", "datetime"),
        Policy(
            "notifications",
            "retention_notifications_days",
            "created_at",
            "datetime",
            _notification_done,
        ),
        Policy("sessions", "retention_sessions_days", "started_at", "datetime", _session_done),
        Policy("dead_letters", "retention_dead_letters_days", "created_at", "datetime"),
        Policy("gaps", "retention_gaps_days", "to_ms", "ms", _gap_settled),
        Policy("rest_bars", "retention_rest_bars_days", "minute", "ms"),
        Policy("funding_rates", "retention_funding_rates_days", "time", "ms"),
    )
}


@dataclass(frozen=True)
class RetentionResult:
    table: str
    cutoff: dt.datetime
    dropped_partitions: tuple[str, ...] = ()
    deleted_rows: int = 0
    complete: bool = True
    export_failures: tuple[str, ...] = ()  # "day: reason" of each day kept (cold tier)


class Retention:
    """Applies :data:`POLICIES`. The clock is injected so the runtime cap is testable."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        chunk_size: int = 5_000,
    ) -> None:
        self.database = database
        self.settings = settings
        self._clock = clock
        self.chunk_size = chunk_size
        self.max_runtime_s = settings.retention_max_runtime_s

    def run(self, table: str) -> RetentionResult:
        policy = POLICIES.get(table)
        if policy is None:
            raise ValueError(f"no retention policy for table {table!r}")
        cutoff = utc_now(self._clock) - policy.days(self.settings) * DAY
        if table in PARTITIONED_TABLES and self.database.dialect == "postgresql":
            return self._drop_partitions(policy, cutoff)
        return self._delete_chunks(policy, cutoff)

    def _drop_partitions(self, policy: Policy, cutoff: dt.datetime) -> RetentionResult:
        failures: list[str] = []
        if self.settings.cold_dir is not None:
            dropped = self._export_and_drop(policy.table, cutoff.date(), failures)
        else:
            with self.database.engine.begin() as conn:
                conn.execute(_LOCK_TIMEOUT)
                dropped = drop_older_than(conn, policy.table, cutoff.date())
        if dropped:
            # This process must not believe those days still exist (it would skip creating
            # one again for a late row); other processes only ever write far newer days.
            forget_known_partitions()
            log.info("retention %s: dropped %s", policy.table, ", ".join(dropped))
        return RetentionResult(
            policy.table,
            cutoff,
            dropped_partitions=tuple(dropped),
            complete=not failures,
            export_failures=tuple(failures),
        )

    def _export_and_drop(self, table: str, cutoff: dt.date, failures: list[str]) -> list[str]:
        """Each old day exported to the cold tier, then dropped; a failed day is kept."""
        assert self.settings.cold_dir is not None
        with self.database.engine.connect() as conn:
            days = days_older_than(conn, table, cutoff)
        dropped = []
        for day in days:
            try:
                export_and_drop(self.database, self.settings.cold_dir, table, day)
            except ExportFailed as exc:
                failures.append(f"{day}: {exc}")
                continue
            dropped.append(partition_name(table, day))
        return dropped

    def _delete_chunks(self, policy: Policy, cutoff: dt.datetime) -> RetentionResult:
        table = _table(policy.table)
        bound: Any = int(cutoff.timestamp() * 1000) if policy.unit == "ms" else cutoff
        condition = table.c[policy.column] < bound
        if policy.finished is not None:
            condition = condition & policy.finished(table, cutoff)
        key = list(table.primary_key.columns)
        victims = select(*key).where(condition).limit(self.chunk_size)
        target = key[0] if len(key) == 1 else tuple_(*key)
        stmt = delete(table).where(target.in_(victims))
        started = self._clock.monotonic()
        deleted = 0
        while True:
            with self.database.engine.begin() as conn:
                n = conn.execute(stmt).rowcount or 0
            deleted += n
            if n < self.chunk_size:
                complete = True
                break
            if self._clock.monotonic() - started >= self.max_runtime_s:
                complete = False
                log.warning(
                    "retention %s: runtime cap %.0f s reached after %d rows; continuing next run",
                    policy.table,
                    self.max_runtime_s,
                    deleted,
                )
                break
        if deleted:
            log.info("retention %s: deleted %d rows older than %s", policy.table, deleted, cutoff)
        return RetentionResult(policy.table, cutoff, deleted_rows=deleted, complete=complete)


@shared_task(bind=True, name="hyperwatch.maintenance.retention", ignore_result=True)
def retention(self: Task, table: str) -> dict[str, Any]:
    """Queue maintenance, one beat entry per table. Idempotent (deleting what is already
    gone deletes nothing). Not retried: the next run is the retry; an unknown table name is
    a ValueError (a typo in the schedule must be loud)."""
    settings: Settings = self.app.settings
    result = Retention(get_database(settings), settings).run(table)
    return {
        "table": result.table,
        "dropped_partitions": list(result.dropped_partitions),
        "deleted_rows": result.deleted_rows,
        "complete": result.complete,
        "export_failures": list(result.export_failures),
    }
