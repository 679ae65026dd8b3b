"""Celery beat's periodic jobs: each entry names its queue, cadence and why it exists.

Exactly one beat sends: ``tasks.maintenance.beat_guard.SingleBeatScheduler`` (installed as
the app's ``beat_scheduler``) holds a Redis lock and a second beat waits as a standby.

Every entry carries ``expires`` equal to its period: while no worker consumes, beat keeps
sending, and a periodic job that could not start within one period is superseded by the
next one anyway — without it a worker coming back would run the whole backlog of
identical jobs. Periods are whole minutes where nothing needs less, so Sentry cron
monitoring can follow them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from runtime.brokers import is_amqp
from settings import Settings

MAINTENANCE = {"queue": "maintenance", "routing_key": "maintenance"}
NOTIFY = {"queue": "notify", "routing_key": "notify"}
ALERTS = {"queue": "alerts", "routing_key": "alerts"}

# Mirrors tasks/maintenance/health_snapshot.py PERIOD_S (not imported: building the
# schedule must not import the task modules).
HEALTH_SNAPSHOT_PERIOD = dt.timedelta(seconds=30)
OUTBOX_SWEEP_PERIOD = dt.timedelta(seconds=30)
HEAL_PERIOD = dt.timedelta(seconds=30)
ALERTS_TICK_PERIOD = dt.timedelta(seconds=5)

HOURLY = dt.timedelta(hours=1)
TEN_MINUTES = dt.timedelta(minutes=10)

# Retention, one entry per table (queue maintenance; the days are RETENTION_*_DAYS).
RETENTION_PERIODS: dict[str, dt.timedelta] = {
    # Day-partitioned on PostgreSQL: dropping a day is instant and days change once a day;
    # hourly means a missed run costs an hour, not a day.
    "trade_snapshots": HOURLY,
    "asset_context_snapshots": HOURLY,
    "position_snapshots": HOURLY,
    # Chunked deletes: every 10 minutes keeps each run's share small, well inside
    # RETENTION_MAX_RUNTIME_S, so a delete never becomes a long transaction or a burst of
    # bloat. (On SQLite the partitioned tables above are chunk-deleted too.)
    "trade_bars": TEN_MINUTES,
    "user_fills": TEN_MINUTES,
    "health_metrics": TEN_MINUTES,  # ~3,000 rows an hour arrive from the snapshot job
    "notifications": TEN_MINUTES,  # only sent/failed/suppressed ones; pending is the sweeper's
    "sessions": TEN_MINUTES,
    "dead_letters": TEN_MINUTES,
    # Small tables (a row a gap, a REST bar a gapped minute, a funding rate an hour a coin):
    # hourly is plenty.
    "gaps": HOURLY,
    "rest_bars": HOURLY,
    "funding_rates": HOURLY,
}


def _entry(
    task: str, period: dt.timedelta, route: dict[str, str], args: tuple[Any, ...] = ()
) -> dict[str, Any]:
    return {
        "task": task,
        "schedule": period,
        "args": args,
        "options": {**route, "expires": period.total_seconds()},
    }


def build(settings: Settings) -> dict[str, Any]:
    """The schedule for this deployment (cadences that depend on settings come from it)."""
    schedule: dict[str, Any] = {
        # maintenance · hourly / 10 min · old rows and partitions go (see RETENTION_PERIODS).
        f"retention-{table}": _entry(
            "hyperwatch.maintenance.retention", period, MAINTENANCE, (table,)
        )
        for table, period in RETENTION_PERIODS.items()
    }
    # maintenance · hourly · the ingester's recordings older than RECORD_RETENTION_HOURS go
    # (files are hourly, so an hourly run keeps at most an hour more than asked). Only when
    # RECORD_DIR is set: without recordings there is nothing to age out.
    if settings.record_dir is not None:
        schedule["retention-recordings"] = _entry(
            "hyperwatch.maintenance.prune_recordings", HOURLY, MAINTENANCE
        )
    # maintenance · hourly · inserts never wait on partition DDL: PARTITIONS_AHEAD_DAYS days
    # exist ahead on PostgreSQL; on-demand creation in the insert path stays the fallback.
    schedule["partitions-ahead"] = _entry(
        "hyperwatch.maintenance.create_partitions", HOURLY, MAINTENANCE
    )
    # maintenance · 30 s · database/Redis latency, queue depths, ingest lag, newest-row ages,
    # live workers and memory: trends in `health_metrics` and the gauges of every worker's
    # /metrics; 30 s resolves an incident's shape without flooding the table.
    schedule["health-snapshot"] = _entry(
        "hyperwatch.maintenance.health_snapshot", HEALTH_SNAPSHOT_PERIOD, MAINTENANCE
    )
    # notify · 30 s · the outbox's failsafe: a notification whose delivery message was lost
    # (worker killed between commit and send, broker down) is re-enqueued within
    # NOTIFY_SWEEP_AFTER_S plus one period.
    schedule["outbox-sweep"] = _entry("hyperwatch.notify.sweep_outbox", OUTBOX_SWEEP_PERIOD, NOTIFY)
    # maintenance · 30 s · the healing failsafe: a closed gap is healed as soon as the worker
    # records the close (tasks/persist.py sends the job); this takes what that missed — a
    # failed call, a spent REST budget — so no closed gap waits longer than this.
    schedule["heal-gaps"] = _entry("hyperwatch.maintenance.heal_gaps", HEAL_PERIOD, MAINTENANCE)
    # maintenance · 30 s · RabbitMQ only: what quorum queues dead-lettered at their delivery
    # limit goes into `dead_letters` like every other poison (tasks/maintenance/dead_letters).
    if is_amqp(settings.effective_broker_url):
        schedule["dead-letters"] = _entry(
            "hyperwatch.maintenance.collect_dead_letters", HEAL_PERIOD, MAINTENANCE
        )
    # alerts · 5 s · a feed that goes silent sends no batch, so nothing else can notice it:
    # the tick evaluates stale-data alerts, starts the holds of coins whose data went stale
    # or into an open gap (their subscribers are told once), and retires expired alerts.
    schedule["alerts-tick"] = _entry("hyperwatch.alerts.tick", ALERTS_TICK_PERIOD, ALERTS)
    # maintenance · half POSITION_POLL_HOT_S (5 s) · the exchange's WebSocket follows at
    # most 10 users per IP; every other tracked wallet is polled over REST by this one job,
    # each run taking the wallets due (hot, active, idle cadences) within its budget share.
    # Half the hot cadence: a hot wallet falls due at most half a period from a run.
    schedule["poll-positions"] = _entry(
        "hyperwatch.maintenance.poll_positions",
        dt.timedelta(seconds=settings.position_poll_tick_s),
        MAINTENANCE,
    )
    return schedule
