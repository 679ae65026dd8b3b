"""The closed list of hyperwatch's Prometheus metrics.

Every metric any process exports is defined here, once, with its type, labels and meaning,
so a typo is an AttributeError at import instead of a silently new time series. Processes
register what they use on their own registry via :func:`registry_with`; the worker exports
through a multiprocess-safe directory when PROMETHEUS_MULTIPROC_DIR is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MetricType = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class MetricDef:
    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None


_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)

# --- ingester -------------------------------------------------------------------------------
FRAMES = MetricDef(
    "hyperwatch_ingest_frames_total", "counter", "WebSocket frames received.", ("channel",)
)
EVENTS = MetricDef(
    "hyperwatch_ingest_events_total", "counter", "Typed events parsed from frames.", ("channel",)
)
MALFORMED = MetricDef(
    "hyperwatch_ingest_malformed_frames_total",
    "counter",
    "Frames rejected by the parser.",
    ("reason",),
)
DUPLICATES_DROPPED = MetricDef(
    "hyperwatch_ingest_duplicates_total",
    "counter",
    "Events dropped by ingester dedup (replays).",
    ("channel",),
)
SERVER_ERRORS = MetricDef(
    "hyperwatch_ingest_server_errors_total", "counter", "Error frames sent by the exchange."
)
RECONNECTS = MetricDef(
    "hyperwatch_ingest_reconnects_total", "counter", "WebSocket reconnects.", ("reason",)
)
GAPS = MetricDef(
    "hyperwatch_ingest_gaps_total", "counter", "Gap records opened on reconnect.", ("stream",)
)
CONNECTED = MetricDef(
    "hyperwatch_ingest_connected", "gauge", "1 while the WebSocket is open and subscribed."
)
BATCHES_PUBLISHED = MetricDef(
    "hyperwatch_ingest_batches_published_total",
    "counter",
    "Batches published to the broker.",
    ("kind",),
)
EVENTS_PUBLISHED = MetricDef(
    "hyperwatch_ingest_events_published_total",
    "counter",
    "Events published to the broker.",
    ("kind",),
)
BUFFER_DEPTH = MetricDef(
    "hyperwatch_ingest_buffer_events", "gauge", "Events held in memory waiting for the broker."
)
EVENTS_LOST = MetricDef(
    "hyperwatch_ingest_events_lost_total",
    "counter",
    "Events dropped because the buffer overflowed.",
    ("kind",),
)
LEADER = MetricDef(
    "hyperwatch_ingest_leader",
    "gauge",
    "1 while this ingester holds its feed's lease and publishes; 0 while it stands by.",
)
TAKEOVERS = MetricDef(
    "hyperwatch_ingest_takeovers_total",
    "counter",
    "Times this ingester took its feed's lease (the first start included).",
)
LEASE_LOST = MetricDef(
    "hyperwatch_ingest_lease_lost_total",
    "counter",
    "Times this ingester stopped leading without choosing to.",
    ("reason",),
)
STANDBY_HELD = MetricDef(
    "hyperwatch_ingest_standby_held_events",
    "gauge",
    "Events a standby holds to publish from if it takes over.",
)
PUBLISH_LATENCY = MetricDef(
    "hyperwatch_ingest_publish_seconds",
    "histogram",
    "Time to publish one batch.",
    ("kind",),
    _LATENCY_BUCKETS,
)
INGEST_LAG = MetricDef(
    "hyperwatch_ingest_lag_seconds",
    "gauge",
    "Now minus the newest event time seen, per stream.",
    ("stream",),
)
PLANNED_CONNECTIONS = MetricDef(
    "hyperwatch_ingest_planned_connections",
    "gauge",
    "WebSocket connections this ingester's subscription plan uses (the exchange allows 10 per IP).",
)
PLANNED_SUBSCRIPTIONS = MetricDef(
    "hyperwatch_ingest_planned_subscriptions",
    "gauge",
    "Subscriptions planned per connection, new listings included (the exchange allows 1000 per IP).",
    ("connection",),
)
STREAM_RESUBSCRIBES = MetricDef(
    "hyperwatch_ingest_stream_resubscribes_total",
    "counter",
    "Streams unsubscribed and subscribed again after going silent while their socket delivered.",
    ("channel",),
)
LISTING_CHANGES = MetricDef(
    "hyperwatch_ingest_listing_changes_total",
    "counter",
    "Coins added to (listed) or dropped from (delisted) the live subscriptions after a meta "
    "refresh, or left out for want of room (unplaced).",
    ("change",),
)

# --- workers --------------------------------------------------------------------------------
ROWS_STORED = MetricDef("hyperwatch_rows_stored_total", "counter", "New rows written.", ("table",))
ROWS_DUPLICATE = MetricDef(
    "hyperwatch_rows_duplicate_total",
    "counter",
    "Rows skipped as already stored (idempotent replays).",
    ("table",),
)
TASK_DURATION = MetricDef(
    "hyperwatch_task_duration_seconds", "histogram", "Task run time.", ("task",), _LATENCY_BUCKETS
)
TASKS_FAILED = MetricDef(
    "hyperwatch_tasks_failed_total", "counter", "Tasks that raised.", ("task",)
)
DEAD_LETTERS = MetricDef(
    "hyperwatch_dead_letters_total",
    "counter",
    "Payloads rejected as malformed (never retried).",
    ("task",),
)
ALERTS_FIRED = MetricDef("hyperwatch_alerts_fired_total", "counter", "Alerts fired.", ("kind",))
NOTIFICATIONS = MetricDef(
    "hyperwatch_notifications_total", "counter", "Notification outcomes.", ("status", "channel")
)
NOTIFY_LATENCY = MetricDef(
    "hyperwatch_notification_delivery_seconds",
    "histogram",
    "Event time to confirmed delivery.",
    ("channel",),
    _LATENCY_BUCKETS,
)

# --- the position poller (tasks.maintenance.positions_poll) ------------------------------------
# Seconds between two polls of a wallet: from the hot cadence (10 s) to a stretched idle one.
_POLL_BUCKETS = (2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
WALLET_POLL_INTERVAL = MetricDef(
    "hyperwatch_wallet_poll_interval_seconds",
    "histogram",
    "Time between two successful REST position polls of a wallet, by the wallet's cadence "
    "class (hot, active, idle) at the second poll: the cadence achieved.",
    ("class",),
    _POLL_BUCKETS,
)
WALLET_POLL_OVERDUE = MetricDef(
    "hyperwatch_wallet_poll_overdue",
    "gauge",
    "Polled wallets past their due time after the latest poll run, per cadence class.",
    ("class",),
)
WALLET_POLL_WALLETS = MetricDef(
    "hyperwatch_wallet_poll_wallets",
    "gauge",
    "Wallets polled over REST (beyond the WebSocket users) per cadence class, at the latest run.",
    ("class",),
)

# --- subscriber API (`hyperwatch api`) ----------------------------------------------------------
# Labelled by the route's template (/v1/alerts/{alert_id}), never by the raw path or the key.
API_REQUESTS = MetricDef(
    "hyperwatch_api_requests_total",
    "counter",
    "API requests answered, per method, route template and status code.",
    ("method", "route", "status"),
)
API_LATENCY = MetricDef(
    "hyperwatch_api_request_duration_seconds",
    "histogram",
    "API request time from the first byte read to the response sent, per method and route.",
    ("method", "route"),
)
API_RATE_LIMITED = MetricDef(
    "hyperwatch_api_rate_limited_total",
    "counter",
    "API requests refused with 429 (the key's tier rate per minute used up), per tier.",
    ("tier",),
)
API_AUTH_FAILURES = MetricDef(
    "hyperwatch_api_auth_failures_total",
    "counter",
    "API requests refused with 401, per reason (missing, invalid: unknown, revoked or of an inactive user).",
    ("reason",),
)

# --- health snapshot (beat job / health command) ---------------------------------------------
QUEUE_DEPTH = MetricDef(
    "hyperwatch_queue_depth", "gauge", "Messages waiting per queue.", ("queue",)
)
DB_LATENCY = MetricDef("hyperwatch_db_latency_seconds", "gauge", "Database ping round trip.")
REDIS_LATENCY = MetricDef("hyperwatch_redis_latency_seconds", "gauge", "Redis ping round trip.")
NEWEST_ROW_AGE = MetricDef(
    "hyperwatch_newest_row_age_seconds", "gauge", "Age of the newest row.", ("table",)
)
WORKERS_ALIVE = MetricDef("hyperwatch_workers_alive", "gauge", "Workers with a fresh heartbeat.")
WORKER_MEMORY = MetricDef(
    "hyperwatch_worker_memory_bytes",
    "gauge",
    "Resident memory of a live worker node (main process + pool children).",
    ("node",),
)
GAPS_UNFILLED = MetricDef(
    "hyperwatch_gaps_unfilled",
    "gauge",
    "Gaps not yet filled (open or partial) touching the last HEALTH_GAP_WINDOW_S, per stream.",
    ("stream",),
)
COLD_EXPORT_FAILURES = MetricDef(
    "hyperwatch_cold_export_failures",
    "gauge",
    "Days whose export to the cold tier failed (their partitions are kept); health is "
    "degraded while above zero.",
)
GAP_SECONDS = MetricDef(
    "hyperwatch_gap_seconds",
    "gauge",
    "Seconds of the last 24 h inside gaps, per stream and status (open, healed, "
    "unrecoverable): the completeness ledger in one series (`hyperwatch gaps` per coin-hour).",
    ("stream", "status"),
)
HEALTH_STATUS = MetricDef(
    "hyperwatch_health_status",
    "gauge",
    "Health per check and overall (check=overall): 0 healthy, 1 degraded, 2 unhealthy.",
    ("check",),
)

# --- ingester: the recorder (RECORD_DIR) --------------------------------------------------
RECORD_FRAMES = MetricDef(
    "hyperwatch_ingest_record_frames_total", "counter", "Raw frames written to the recording."
)
RECORD_DROPPED = MetricDef(
    "hyperwatch_ingest_record_dropped_frames_total",
    "counter",
    "Frames left out of the recording (ingestion unaffected): queue_full (the writer fell "
    "behind) or disk (a write failed, e.g. the disk is full).",
    ("reason",),
)
RECORD_BYTES = MetricDef(
    "hyperwatch_ingest_record_bytes_total", "counter", "Compressed bytes written to recordings."
)

ALL: tuple[MetricDef, ...] = (
    FRAMES,
    EVENTS,
    MALFORMED,
    DUPLICATES_DROPPED,
    SERVER_ERRORS,
    RECONNECTS,
    GAPS,
    CONNECTED,
    BATCHES_PUBLISHED,
    EVENTS_PUBLISHED,
    BUFFER_DEPTH,
    EVENTS_LOST,
    LEADER,
    TAKEOVERS,
    LEASE_LOST,
    STANDBY_HELD,
    PUBLISH_LATENCY,
    INGEST_LAG,
    PLANNED_CONNECTIONS,
    PLANNED_SUBSCRIPTIONS,
    STREAM_RESUBSCRIBES,
    LISTING_CHANGES,
    RECORD_FRAMES,
    RECORD_DROPPED,
    RECORD_BYTES,
    ROWS_STORED,
    ROWS_DUPLICATE,
    TASK_DURATION,
    TASKS_FAILED,
    DEAD_LETTERS,
    ALERTS_FIRED,
    NOTIFICATIONS,
    NOTIFY_LATENCY,
    WALLET_POLL_INTERVAL,
    WALLET_POLL_OVERDUE,
    WALLET_POLL_WALLETS,
    API_REQUESTS,
    API_LATENCY,
    API_RATE_LIMITED,
    API_AUTH_FAILURES,
    QUEUE_DEPTH,
    DB_LATENCY,
    REDIS_LATENCY,
    NEWEST_ROW_AGE,
    WORKERS_ALIVE,
    WORKER_MEMORY,
    GAPS_UNFILLED,
    GAP_SECONDS,
    COLD_EXPORT_FAILURES,
    HEALTH_STATUS,
)

Metric = Counter | Gauge | Histogram


def _exported_name(d: MetricDef) -> str:
    # prometheus_client appends _total to counters itself.
    return d.name.removesuffix("_total") if d.type == "counter" else d.name


def build(d: MetricDef, registry: CollectorRegistry) -> Metric:
    """Create one metric from its definition on ``registry``."""
    name = _exported_name(d)
    if d.type == "counter":
        return Counter(name, d.help, d.labels, registry=registry)
    if d.type == "gauge":
        return Gauge(name, d.help, d.labels, registry=registry, multiprocess_mode="livesum")
    return Histogram(
        name, d.help, d.labels, registry=registry, buckets=d.buckets or _LATENCY_BUCKETS
    )


class Metrics:
    """A registry holding the given metric definitions, looked up by definition."""

    def __init__(
        self, defs: tuple[MetricDef, ...] = ALL, registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._by_name: dict[str, Metric] = {d.name: build(d, self.registry) for d in defs}

    def __getitem__(self, d: MetricDef) -> Metric:
        return self._by_name[d.name]

    def counter(self, d: MetricDef) -> Counter:
        metric = self._by_name[d.name]
        assert isinstance(metric, Counter), d.name
        return metric

    def gauge(self, d: MetricDef) -> Gauge:
        metric = self._by_name[d.name]
        assert isinstance(metric, Gauge), d.name
        return metric

    def histogram(self, d: MetricDef) -> Histogram:
        metric = self._by_name[d.name]
        assert isinstance(metric, Histogram), d.name
        return metric
