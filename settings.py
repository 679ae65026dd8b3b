"""The one validated settings object for every hyperwatch process.

Settings come from the environment and an optional ``.env`` file in the working directory.
Nothing reads them at import time: each process calls :func:`load_settings` once at start
and passes the object down. A bad value raises :class:`SettingsError` whose message is one
line naming the variable and what it expected; the CLI turns that into exit code 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import unquote

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Tier = Literal["free", "pro", "enterprise"]
TIERS: tuple[Tier, ...] = ("free", "pro", "enterprise")

ADDRESS_PATTERN = re.compile(r"^0x[0-9a-f]{40}$")
# Hyperliquid coin names are case-sensitive and taken verbatim from `meta`; this only
# rejects what can never be a coin (spaces, empty, lists), the ingester checks the rest.
COIN_PATTERN = re.compile(r"^[A-Za-z0-9:/@#._-]{1,40}$")


# The checkout: settings.py sits at its root (a top-level module of the project).
PROJECT_DIR: Final = Path(__file__).resolve().parent
SQLITE_FILE: Final = "hyperwatch.db"


def default_data_dir(project_dir: Path = PROJECT_DIR) -> Path:
    """DATA_DIR's default: ``var/`` in the checkout, whatever the working directory.

    Anchored to the project rather than the working directory, so that every command
    (``hyperwatch health`` run from anywhere, the processes ``hyperwatch up`` starts) finds
    the same SQLite file and heartbeats. An installed copy that is not a checkout (no
    pyproject.toml beside settings.py) uses ``$XDG_DATA_HOME/hyperwatch`` instead
    (``~/.local/share/hyperwatch``); images and units set ``DATA_DIR`` explicitly.
    """
    if (project_dir / "pyproject.toml").is_file():
        return project_dir / "var"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "hyperwatch"


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file (four slashes for an absolute path)."""
    return f"sqlite:///{path}"


MAX_SHARDS: Final = 64
# The largest magnitude of any numeric setting (Settings._bounded_number).
MAX_SETTING_NUMBER: Final = 10**9
_SHARD = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` as (i, N); ValueError unless 0 <= i < N <= MAX_SHARDS."""
    match = _SHARD.match(text)
    expected = f"i/N with 0 <= i < N <= {MAX_SHARDS} (e.g. 0/1, 2/4), got {text!r}"
    if match is None:
        raise ValueError(expected)
    index, count = int(match[1]), int(match[2])
    if not 0 <= index < count <= MAX_SHARDS:
        raise ValueError(expected)
    return index, count


_SENTINEL_PART = re.compile(r"^sentinel://([^@/;]*@)?[^:/;@]+(:\d+)?(/\d*)?$")


def _check_sentinel_url(url: str) -> None:
    """kombu's Sentinel URL: one ``sentinel://[:password@]host[:port][/db]`` per sentinel
    node, separated by ``;`` (runtime/redis_clients.py reads it)."""
    for part in url.split(";"):
        if not _SENTINEL_PART.match(part.strip()):
            raise ValueError(
                f"sentinel://host:port;sentinel://host:port/db (part {redact_url(part)!r} is not)"
            )


class SettingsError(Exception):
    """A setting has a value the system cannot run with. ``str()`` is one line."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"invalid setting {variable}: {problem}")


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_HOST_LABEL: Final = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def normalise_host_name(host: str) -> str | None:
    """Lower-case ASCII (IDNA) host name without a trailing dot, or None if malformed.

    Here rather than in the SSRF guard that applies it, so that validating
    ``WEBHOOK_ALLOWLIST`` at start-up needs nothing above the settings layer.
    """
    try:
        name = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    name = name.lower().removesuffix(".")
    if not name or len(name) > 253:
        return None
    return name if all(_HOST_LABEL.match(label) for label in name.split(".")) else None


def fernet_keys(text: str | None) -> list[bytes]:
    """``CHANNEL_SECRET_KEYS`` as Fernet keys (first encrypts, all decrypt); ValueError says
    which key is wrong. cryptography is imported only when keys are set."""
    keys = [k.strip() for k in (text or "").split(",") if k.strip()]
    if not keys:
        return []
    from cryptography.fernet import Fernet

    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except ValueError:
            raise ValueError(
                f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "`hyperwatch channels new-key` makes one)"
            ) from None
    return [k.encode() for k in keys]


class Settings(BaseSettings):
    """Every knob of hyperwatch. Field name upper-cased is the environment variable."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        # "inf", "nan" and a number too long for a float (which reads as inf) are refused:
        # every duration, size and threshold here is a finite number.
        allow_inf_nan=False,
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(
        # Not default_data_dir itself: pydantic would pass a one-argument factory the
        # validated data.
        default_factory=lambda: default_data_dir(),
        description="Where embedded files live (SQLite, heartbeats, beat's schedule). A relative "
        "path is relative to the working directory.",
        json_schema_extra={"shown_default": "`var/` in the checkout (beside `settings.py`)"},
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL: postgresql+psycopg2://… in production, SQLite for a first run. "
        "Unset or empty: SQLite in DATA_DIR.",
        json_schema_extra={"shown_default": "`sqlite:///<DATA_DIR>/hyperwatch.db`"},
    )
    database_max_connections: int = Field(10, ge=1, le=1000, description="Pool size per process.")
    database_connection_timeout: int = Field(
        10_000,
        ge=100,
        le=600_000,
        description="Milliseconds to wait for a connection (connect and pool checkout).",
    )

    # --- redis / broker ------------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis for the cache (latest mids/contexts, locks)."
    )
    broker_url: str | None = Field(
        None,
        description=(
            "Celery broker; defaults to REDIS_URL. redis:// (plain Redis), "
            "sentinel://host:port;sentinel://host:port/db (Redis Sentinel, kombu's format) or "
            "amqp://user:password@host:port/vhost (RabbitMQ, quorum queues)."
        ),
    )
    redis_sentinel_master: str = Field(
        "mymaster",
        min_length=1,
        description="Sentinel master name, when REDIS_URL is a sentinel:// URL.",
    )
    broker_delivery_limit: int = Field(
        20,
        ge=1,
        le=1000,
        description=(
            "RabbitMQ only: deliveries of one message (x-delivery-limit) before it is "
            "dead-lettered; each killed worker holding it counts one."
        ),
    )
    broker_sentinel_master: str | None = Field(
        None,
        description=(
            "Sentinel master name of a sentinel:// BROKER_URL; defaults to REDIS_SENTINEL_MASTER."
        ),
    )

    # --- hyperliquid feed -----------------------------------------------------------------
    hl_ws_url: str = Field(
        "wss://api.hyperliquid.xyz/ws", description="Hyperliquid WebSocket endpoint."
    )
    hl_info_url: str = Field(
        "https://api.hyperliquid.xyz/info", description="Hyperliquid REST /info endpoint."
    )
    coins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["all"],
        description="`all` (every listed perp from meta) or a comma-separated list such as BTC,ETH.",
    )
    tracked_wallets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated 0x addresses whose positions and fills are followed.",
    )
    ws_user_limit: int = Field(
        10,
        ge=0,
        le=15,
        description="Wallets followed over WebSocket; the rest are polled over REST.",
    )
    ingest_shard: str = Field(
        "0/1",
        description="This ingester's shard as i/N (0 <= i < N <= 64): it takes the coins and tracked wallets a "
        "stable hash (CRC-32 of the name) puts in shard i of N; run one ingester per shard, each with its own "
        "INGESTER_NAME.",
    )
    ingest_subscriptions_per_connection: int = Field(
        200,
        ge=2,
        le=1000,
        description="Most subscriptions planned on one WebSocket; more open further connections "
        "(`hyperwatch ingest --plan` shows the plan).",
    )
    ingest_meta_refresh_s: float = Field(
        60.0,
        ge=0,
        description="With COINS=all, re-read meta this often (s) to subscribe new listings and drop delisted "
        "coins without a restart (0 = never).",
    )
    ingester_name: str = Field(
        "default",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description=(
            "Stable name of this ingester's feed. Ingesters with the same name (and shard) "
            "share one lease: one publishes, the others stand by and take over. The feed's "
            "open gaps and newest published times are kept in Redis under it, so the next "
            "leader (a standby, or the next start after a crash or deploy) resumes from them."
        ),
    )
    ingest_lease_ttl_s: float = Field(
        1.5,
        ge=0.5,
        le=30,
        description=(
            "Life of the feed's leadership lease, renewed six times per TTL. A standby takes "
            "over at most about this long after the leader dies or is cut off from Redis."
        ),
    )
    ingest_standby_buffer_s: float = Field(
        10.0,
        gt=0,
        le=600,
        description=(
            "Seconds of batches a standby ingester holds to publish from when it takes over: "
            "more than the takeover time plus the leader's usual publish backlog."
        ),
    )
    ingest_standby_buffer_max_events: int = Field(
        600_000,
        ge=1000,
        description="Cap on the events a standby holds (about 100 bytes each).",
    )
    ping_interval_s: float = Field(
        20.0, gt=0, le=50, description="Application ping cadence (server idles out at 60 s)."
    )
    pong_timeout_s: float = Field(
        10.0, gt=0, le=30, description="No pong within this → the socket is dead."
    )
    stream_silence_s: float = Field(
        15.0,
        gt=0,
        description="activeAssetCtx pushes every second: one stream with a steady cadence silent this long (at "
        "least 3 of its periods) while the socket's others deliver → resubscribed; all of them → reconnect.",
    )
    reconnect_min_s: float = Field(0.25, gt=0, description="First reconnect backoff.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Backoff ceiling.")
    max_connects_per_minute: int = Field(
        30, ge=1, le=30, description="Hyperliquid allows 30 new connections a minute per IP."
    )
    subscribe_messages_per_minute: int = Field(
        1800,
        ge=1,
        le=2000,
        description="Pacing of (re)subscribe bursts; the exchange caps at 2000 a minute.",
    )
    position_poll_interval_s: float = Field(
        30.0,
        gt=0,
        description="REST polling cadence of active wallets beyond the WS limit: a fill or a position "
        "change within POSITION_POLL_ACTIVE_WINDOW_S.",
    )
    position_poll_hot_s: float = Field(
        10.0,
        gt=0,
        description="REST polling cadence of hot wallets: a liquidation-distance alert within twice its "
        "threshold, or any other alert on the wallet. Never stretched for the others.",
    )
    position_poll_idle_s: float = Field(
        300.0,
        gt=0,
        description="REST polling cadence of every other polled wallet (the floor); stretches first when "
        "the budget cannot cover every wallet.",
    )
    position_poll_active_window_s: float = Field(
        900.0,
        gt=0,
        description="A wallet with a fill or a position change this recent is polled as active.",
    )
    rest_weight_per_minute: int = Field(
        1000, ge=1, le=1200, description="REST budget we allow ourselves (exchange: 1200)."
    )
    wallet_set_refresh_s: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Workers re-read the tracked wallets (TRACKED_WALLETS and the database's) at most this often "
        "(s) to record every tracked wallet's side of the public trades; a newly tracked wallet is seen within "
        "this (0 = at every batch).",
    )

    # --- ingest batching -------------------------------------------------------------------
    ingest_batch_size: int = Field(
        2000, ge=1, le=100_000, description="Flush a batch at this many events …"
    )
    ingest_batch_ms: int = Field(
        100, ge=1, le=60_000, description="… or after this many milliseconds, whichever first."
    )
    ingest_alert_batch_ms: int = Field(
        50,
        ge=1,
        le=60_000,
        description="Mids and asset contexts (what price and funding alerts judge) flush after this many "
        "milliseconds instead of INGEST_BATCH_MS: the alert latency's largest part (trades keep INGEST_BATCH_MS).",
    )
    ingest_buffer_max_events: int = Field(
        500_000,
        ge=1000,
        description="Events held in memory while Redis is away; beyond it the oldest are dropped and counted.",
    )
    ingest_outage_replay_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="After a broker outage, batches published this many seconds before it are sent again (0 = off): "
        "a message popped by a worker or unsynced by Redis as it went down would otherwise be lost; writes are idempotent.",
    )
    ingest_outage_replay_max_events: int = Field(
        60_000,
        ge=0,
        description="Cap on the events kept for that replay (memory bound at high rates).",
    )
    ingest_confirm_timeout_s: float = Field(
        30.0,
        ge=1,
        description="A published batch still unconfirmed after this long, while the ingest queue and the broker's "
        "unacked set are empty, was lost by a dying worker and is sent again (idempotent).",
    )
    ingest_confirm_max_events: int = Field(
        60_000,
        ge=0,
        description="Events kept awaiting confirmation (memory bound; 0 = off). Covers the timeout at rates up to "
        "about this / INGEST_CONFIRM_TIMEOUT_S events per second; above that only the newest batches are covered.",
    )
    ingest_dedup_size: int = Field(
        100_000, ge=1000, description="Recent trade keys remembered for dedup."
    )
    record_dir: Path | None = Field(
        None,
        description="Record every raw frame the ingester receives to hourly LZ4 files here (docs/OPERATIONS.md, "
        '"Recording and replay"); `hyperwatch replay` plays them back. Unset or empty: no recording.',
    )
    record_queue_max_mb: int = Field(
        64,
        ge=1,
        le=4096,
        description="Frames held for the recorder's writer (MiB); beyond it frames are left out of the recording "
        "and counted, ingestion never waits.",
    )
    record_retention_hours: int = Field(
        72,
        ge=1,
        le=24 * 365,
        description="Hours of recordings kept; the maintenance job deletes older files in RECORD_DIR.",
    )
    ingester_health_port: int = Field(
        8001, ge=0, le=65535, description="Ingester /healthz /readyz /metrics (0 = off)."
    )
    ingester_health_host: str = Field(
        "127.0.0.1", description="Bind address of the ingester's health server."
    )

    # --- celery ----------------------------------------------------------------------------
    broker_visibility_timeout_s: int = Field(
        600,
        ge=5,
        description="Unacked messages of a killed worker come back after this; must exceed the longest task + queue wait.",
    )
    worker_soft_shutdown_timeout_s: float = Field(
        45.0,
        ge=0,
        description="SIGTERM grace for running tasks; keep below the orchestrator's grace period (60 s).",
    )
    worker_prefetch_multiplier: int = Field(
        1,
        ge=1,
        le=512,
        description="Messages reserved per worker process; 1 because batches are long tasks (bench/bench_worker.py: no gain above 1).",
    )
    task_time_limit_s: int = Field(
        300, ge=5, description="Hard kill of a task running longer than this."
    )

    # --- sentry ----------------------------------------------------------------------------
    sentry_dsn: SecretStr | None = Field(None, description="Sentry DSN; unset disables Sentry.")
    sentry_environment: str = Field("development", description="Sentry environment tag.")
    sentry_traces_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Fraction of tasks traced."
    )

    # --- retention (days) ------------------------------------------------------------------
    retention_trades_days: int = Field(7, ge=1, description="Days of trades kept.")
    retention_trade_bars_days: int = Field(90, ge=1, description="Days of trade bars kept.")
    retention_asset_contexts_days: int = Field(30, ge=1, description="Days of asset contexts kept.")
    retention_positions_days: int = Field(30, ge=1, description="Days of positions kept.")
    retention_health_metrics_days: int = Field(14, ge=1, description="Days of health metrics kept.")
    retention_notifications_days: int = Field(90, ge=1, description="Days of notifications kept.")
    retention_sessions_days: int = Field(90, ge=1, description="Days of sessions kept.")
    retention_fills_days: int = Field(90, ge=1, description="Days of tracked wallets' fills kept.")
    retention_dead_letters_days: int = Field(
        30, ge=1, description="Days of dead letters (rejected payloads) kept."
    )
    retention_gaps_days: int = Field(
        90,
        ge=1,
        description="Days of settled gaps (healed, partial, unrecoverable) kept; open ones stay "
        "until settled.",
    )
    retention_rest_bars_days: int = Field(
        90, ge=1, description="Days of 1-minute bars fetched from REST for gaps kept."
    )
    retention_funding_rates_days: int = Field(
        365, ge=1, description="Days of funding history fetched from REST kept."
    )
    retention_max_runtime_s: float = Field(
        30.0, gt=0, description="Cap on one retention run (chunked deletes)."
    )
    cold_dir: Path | None = Field(
        None,
        description="The cold tier: a directory where retention exports each day partition to "
        "Parquet (one file per table per day, verified) before dropping it; a failed export "
        "keeps the partition. Unset: retention drops days without exporting them.",
    )
    asset_context_bucket_s: int = Field(
        60, ge=1, le=3600, description="Keep one asset context per coin per this many seconds."
    )
    partitions_ahead_days: int = Field(
        3, ge=1, le=60, description="Day partitions kept created ahead on PostgreSQL."
    )

    # --- tiers ------------------------------------------------------------------------------
    tier_free_max_alerts: int = Field(5, ge=0, description="Active alerts allowed (free tier).")
    tier_free_max_wallets: int = Field(1, ge=0, description="Tracked wallets allowed (free tier).")
    tier_free_notifications_per_hour: int = Field(
        20,
        ge=0,
        description="Notifications per hour before the rest are stored as suppressed (free tier).",
    )
    tier_pro_max_alerts: int = Field(100, ge=0, description="Active alerts allowed (pro tier).")
    tier_pro_max_wallets: int = Field(10, ge=0, description="Tracked wallets allowed (pro tier).")
    tier_pro_notifications_per_hour: int = Field(
        500,
        ge=0,
        description="Notifications per hour before the rest are stored as suppressed (pro tier).",
    )
    tier_enterprise_max_alerts: int = Field(
        10_000, ge=0, description="Active alerts allowed (enterprise tier)."
    )
    tier_enterprise_max_wallets: int = Field(
        100, ge=0, description="Tracked wallets allowed (enterprise tier)."
    )
    tier_enterprise_notifications_per_hour: int = Field(
        20_000,
        ge=0,
        description="Notifications per hour before the rest are stored as suppressed (enterprise tier).",
    )
    tier_free_api_requests_per_minute: int = Field(
        60, ge=1, description="API requests per minute per key (free tier; 429 above)."
    )
    tier_pro_api_requests_per_minute: int = Field(
        600, ge=1, description="API requests per minute per key (pro tier; 429 above)."
    )
    tier_enterprise_api_requests_per_minute: int = Field(
        6_000, ge=1, description="API requests per minute per key (enterprise tier; 429 above)."
    )

    # --- alerts ----------------------------------------------------------------------------
    alert_max_age_s: float = Field(
        30.0,
        gt=0,
        description="A mid or asset context older than this (s) is unknown to alerts: it never fires.",
    )
    alert_position_max_age_s: float = Field(
        120.0,
        gt=0,
        description="A tracked wallet's position older than this (s) is unknown to liquidation alerts.",
    )

    alert_hold_mids_s: float = Field(
        10.0,
        gt=0,
        description=(
            "Alerts reading a coin's mid are held (never fire) when its newest mid is older "
            "than this (s); subscribers get one 'data stale' and one 'restored' notice."
        ),
    )
    alert_hold_contexts_s: float = Field(
        30.0,
        gt=0,
        description=(
            "Alerts reading a coin's asset context (mark, funding, open interest) are held "
            "when its newest one is older than this (s)."
        ),
    )
    alert_hold_positions_s: float = Field(
        75.0,
        gt=0,
        description=(
            "Liquidation-distance alerts are held when the wallet's newest position is older "
            "than this (s): its polling cadence (30 s when active) missed twice and a half."
        ),
    )

    # --- notifications ---------------------------------------------------------------------
    notify_max_attempts: int = Field(
        8, ge=1, le=50, description="Delivery attempts before a notification is failed."
    )
    notify_timeout_s: float = Field(
        10.0, gt=0, description="HTTP timeout for one delivery attempt."
    )
    notify_sweep_after_s: int = Field(
        60, ge=5, description="Pending outbox rows older than this are re-enqueued."
    )
    notify_group_wait_s: int = Field(
        0,
        ge=0,
        le=3600,
        description=(
            "Digests: how long the first notification of a new group (a channel with nothing "
            "sent within its group interval) waits to collect others (s); 0 sends it at once. "
            "A channel's own value overrides it."
        ),
    )
    notify_group_interval_s: int = Field(
        0,
        ge=0,
        le=86_400,
        description=(
            "Digests: after a message to a channel, what arrives within this many seconds "
            "goes out as one digest when it ends; 0 sends every notification on its own "
            "(within the channel kind's rate budget). A channel's own value overrides it."
        ),
    )
    notify_repeat_interval_s: int = Field(
        0,
        ge=0,
        le=86_400,
        description=(
            "Digests: an alert already notified on a channel less than this many seconds ago "
            "is not sent on its own again: it waits for the channel's next digest. 0: off."
        ),
    )
    webhook_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs or hostnames allowed even though private/loopback (e.g. 127.0.0.0/8 for tests).",
    )
    telegram_api_base: str = Field(
        "https://api.telegram.org", description="Telegram Bot API base URL."
    )
    channel_secret_keys: SecretStr | None = Field(
        None,
        description="Fernet keys, comma-separated, that encrypt channel secrets and targets in the database "
        "(the first encrypts, all decrypt; `hyperwatch channels new-key`). Unset: stored in plain text.",
    )

    # --- health ----------------------------------------------------------------------------
    health_db_latency_degraded_ms: float = Field(
        250.0, gt=0, description="Database ping slower than this (ms) → degraded."
    )
    health_redis_latency_degraded_ms: float = Field(
        100.0, gt=0, description="Redis ping slower than this (ms) → degraded."
    )
    health_queue_depth_degraded: int = Field(
        1_000, ge=1, description="Messages waiting in any queue beyond this → degraded."
    )
    health_queue_depth_unhealthy: int = Field(
        100_000, ge=1, description="… beyond this → unhealthy."
    )
    health_ingest_lag_degraded_s: float = Field(
        30.0, gt=0, description="No event from the feed for this long (s) → degraded."
    )
    health_ingest_lag_unhealthy_s: float = Field(
        300.0, gt=0, description="… for this long → unhealthy."
    )
    health_gap_window_s: float = Field(
        3600.0,
        gt=0,
        description="A gap not yet filled that touches the last this many seconds → degraded.",
    )
    health_worker_heartbeat_stale_s: float = Field(
        60.0, gt=0, description="A worker heartbeat older than this (s) counts as dead."
    )
    health_memory_degraded_mb: int = Field(
        1024, ge=1, description="Process RSS above this (MiB) → degraded."
    )
    worker_heartbeat_interval_s: float = Field(
        10.0, gt=0, description="How often a worker touches its heartbeat file."
    )
    worker_metrics_port: int = Field(
        9808, ge=0, le=65535, description="Worker /metrics (Prometheus) port (0 = off)."
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Bind address of the worker's /metrics server."
    )
    beat_lock_timeout_s: float = Field(
        30.0,
        ge=3,
        le=600,
        description="A beat that has not renewed the schedule lock for this long is replaced by a standby.",
    )

    # --- flower ----------------------------------------------------------------------------
    flower_basic_auth: SecretStr | None = Field(
        None, description="user:password[,user2:password2] for Flower."
    )
    flower_address: str = Field("127.0.0.1", description="Flower bind address.")
    flower_port: int = Field(5555, ge=1, le=65535, description="Flower HTTP port.")
    flower_allow_unauthenticated: bool = Field(
        False,
        description="Let Flower listen beyond loopback WITHOUT credentials (anyone who reaches it controls the workers); warned about at every start. Never in production.",
    )

    # --- subscriber API (`hyperwatch api`) ----------------------------------------------------
    api_host: str = Field("127.0.0.1", description="`hyperwatch api` bind address.")
    api_port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="`hyperwatch api` HTTP port (0: `hyperwatch up` runs no API).",
    )
    api_workers: int = Field(
        1, ge=1, le=64, description="`hyperwatch api` worker processes (uvicorn --workers)."
    )
    api_admin_key: SecretStr | None = Field(
        None,
        description="The operators' key for the API's /v1/admin routes (users, keys, tiers); at least 32 characters. Unset: no admin routes answer.",
    )
    api_max_body_bytes: int = Field(
        65_536,
        ge=1024,
        le=10_485_760,
        description="Largest request body the API reads (413 above).",
    )

    # --- logging ---------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR."
    )

    # --- validators -------------------------------------------------------------------------
    @field_validator("*")
    @classmethod
    def _bounded_number(cls, value: Any) -> Any:
        # Every numeric setting, whatever its own bounds: a value a process can wait, sleep,
        # allocate or count with (threading's longest wait is about 9.2e9 s; a deque of
        # 10**100 slots fails at start-up, not here). The largest default is below 10**6.
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and abs(value) > MAX_SETTING_NUMBER
        ):
            raise ValueError(f"a number from {-MAX_SETTING_NUMBER:,} to {MAX_SETTING_NUMBER:,}")
        return value

    @field_validator("coins", "tracked_wallets", "webhook_allowlist", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("record_dir", "cold_dir", mode="before")
    @classmethod
    def _record_dir(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir(cls, value: Any) -> Any:
        return default_data_dir() if value is None or value == "" else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("coins")
    @classmethod
    def _coins(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("`all` or a comma-separated list of coin names")
        if [v.lower() for v in value] == ["all"]:
            return ["all"]
        bad = [v for v in value if not COIN_PATTERN.match(v)]
        if bad:
            raise ValueError(f"coin names as Hyperliquid spells them, got {bad[0]!r}")
        return value

    @field_validator("ingest_shard")
    @classmethod
    def _shard(cls, value: str) -> str:
        index, count = parse_shard(value)  # raises ValueError naming the rule
        return f"{index}/{count}"

    @field_validator("tracked_wallets")
    @classmethod
    def _wallets(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for v in value:
            low = v.lower()
            if not ADDRESS_PATTERN.match(low):
                raise ValueError(f"0x followed by 40 hex digits, got {v!r}")
            if low not in out:
                out.append(low)
        return out

    @field_validator("webhook_allowlist")
    @classmethod
    def _allowlist(cls, value: list[str]) -> list[str]:
        # The SSRF guard (domain.notify.egress) parses the list at every delivery; a bad
        # entry must stop the process here, naming the variable, not fail each delivery.
        for entry in value:
            stripped = entry.strip()
            if not stripped:
                continue
            try:
                ipaddress.ip_network(stripped, strict=False)
            except ValueError:
                if normalise_host_name(stripped.lower()) is None:
                    raise ValueError(f"CIDRs or host names, got {entry!r}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if not value:
            return value  # the embedded default, filled in from DATA_DIR by _consistent
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "a SQLAlchemy URL such as postgresql+psycopg2://user@host/db or sqlite:///path"
            ) from None
        if url.get_backend_name() not in ("postgresql", "sqlite"):
            raise ValueError(
                f"a postgresql:// or sqlite:// URL, got backend {url.get_backend_name()!r}"
            )
        if url.get_backend_name() == "postgresql" and not url.database:
            raise ValueError("a database name in the PostgreSQL URL")
        if url.get_backend_name() == "postgresql":
            # psycopg2 is the driver hyperwatch installs (and its COPY paths use); a bare
            # postgresql:// would make SQLAlchemy 2.1 look for psycopg 3 and fail at connect.
            driver = url.get_driver_name() if "+" in url.drivername else None
            if driver is None:
                return url.set(drivername="postgresql+psycopg2").render_as_string(
                    hide_password=False
                )
            if driver != "psycopg2":
                raise ValueError(
                    f"the psycopg2 driver (postgresql+psycopg2:// or postgresql://), got {driver!r}"
                )
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_like(cls, value: str | None) -> str | None:
        if not value:  # unset or empty (compose passes BROKER_URL= through): REDIS_URL
            return None
        if re.match(r"^(amqp|amqps|pyamqp)://", value):
            if not re.match(r"^(amqp|amqps|pyamqp)://([^@/\s]*@)?[^:/@\s]+(:\d+)?(/\S*)?$", value):
                raise ValueError("amqp://user:password@host:port/vhost")
            return value
        return cls._redis_like(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_like(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if value.startswith("sentinel://"):
            _check_sentinel_url(value)
            return value
        if not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError(
                "a redis://host:port/db URL, or sentinel://host:port;sentinel://host:port/db"
            )
        return value

    @field_validator("hl_ws_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not re.match(r"^wss?://[^/\s]+", value):
            raise ValueError("a ws:// or wss:// URL")
        return value

    @field_validator("hl_info_url", "telegram_api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("an http:// or https:// URL")
        return value.rstrip("/") if value.endswith("/") and value.count("/") > 3 else value

    @field_validator("flower_basic_auth")
    @classmethod
    def _basic_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        for pair in value.get_secret_value().split(","):
            user, sep, password = pair.partition(":")
            if not sep or not user or not password:
                raise ValueError("user:password pairs separated by commas")
        return value

    @field_validator("api_admin_key")
    @classmethod
    def _admin_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 32:
            raise ValueError("at least 32 characters (`openssl rand -hex 32` makes one)")
        return value

    @field_validator("channel_secret_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        fernet_keys(value.get_secret_value())  # raises ValueError naming the problem
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not re.match(r"^https?://[^@\s]+@[^/\s]+/\S+$", value.get_secret_value()):
            raise ValueError("a Sentry DSN such as https://key@host/project")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if not self.database_url:
            self.database_url = sqlite_url(self.data_dir / SQLITE_FILE)
        if self.reconnect_max_s < self.reconnect_min_s:
            raise _FieldProblem(
                "reconnect_max_s", f"at least RECONNECT_MIN_S ({self.reconnect_min_s})"
            )
        if self.pong_timeout_s >= self.ping_interval_s * 2:
            raise _FieldProblem("pong_timeout_s", "less than twice PING_INTERVAL_S")
        if self.health_queue_depth_unhealthy < self.health_queue_depth_degraded:
            raise _FieldProblem(
                "health_queue_depth_unhealthy", "at least HEALTH_QUEUE_DEPTH_DEGRADED"
            )
        if self.position_poll_interval_s < self.position_poll_hot_s:
            raise _FieldProblem(
                "position_poll_interval_s",
                f"at least POSITION_POLL_HOT_S ({self.position_poll_hot_s})",
            )
        if self.position_poll_idle_s < self.position_poll_interval_s:
            raise _FieldProblem(
                "position_poll_idle_s",
                f"at least POSITION_POLL_INTERVAL_S ({self.position_poll_interval_s})",
            )
        return self

    # --- derived -----------------------------------------------------------------------------
    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_broker_sentinel_master(self) -> str:
        return self.broker_sentinel_master or self.redis_sentinel_master

    @property
    def shard(self) -> tuple[int, int]:
        """INGEST_SHARD as (index, count)."""
        return parse_shard(self.ingest_shard)

    @property
    def feed(self) -> str:
        """The feed this ingester serves: INGESTER_NAME, and its shard when there are several.
        Ingesters of one feed share a lease (one publishes) and a gap journal, so two
        shards can never take each other for a standby even under one INGESTER_NAME."""
        index, count = self.shard
        return self.ingester_name if count == 1 else f"{self.ingester_name}.shard{index}of{count}"

    @property
    def position_poll_tick_s(self) -> float:
        """How often beat runs the position poller: half the hot cadence (at least a second),
        so a hot wallet falls due at most half a tick away from a run."""
        return max(1.0, self.position_poll_hot_s / 2)

    @property
    def all_coins(self) -> bool:
        return self.coins == ["all"]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def tier_quota(self, tier: Tier) -> TierQuota:
        return TierQuota(
            max_alerts=getattr(self, f"tier_{tier}_max_alerts"),
            max_wallets=getattr(self, f"tier_{tier}_max_wallets"),
            notifications_per_hour=getattr(self, f"tier_{tier}_notifications_per_hour"),
            api_requests_per_minute=getattr(self, f"tier_{tier}_api_requests_per_minute"),
        )

    def redacted(self) -> dict[str, Any]:
        """Every setting with secrets and URL passwords masked: safe to log or print."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "**********" if value.get_secret_value() else None
            elif isinstance(value, str) and "://" in value:
                value = redact_url(value)
            elif isinstance(value, Path | Decimal):
                value = str(value)
            out[name] = value
        return out


class TierQuota:
    """What one tier may have. A plain value object; quotas are enforced by the services."""

    __slots__ = ("api_requests_per_minute", "max_alerts", "max_wallets", "notifications_per_hour")

    def __init__(
        self,
        max_alerts: int,
        max_wallets: int,
        notifications_per_hour: int,
        api_requests_per_minute: int,
    ) -> None:
        self.max_alerts = max_alerts
        self.max_wallets = max_wallets
        self.notifications_per_hour = notifications_per_hour
        self.api_requests_per_minute = api_requests_per_minute

    def __repr__(self) -> str:
        return (
            f"TierQuota(max_alerts={self.max_alerts}, max_wallets={self.max_wallets}, "
            f"notifications_per_hour={self.notifications_per_hour})"
        )


class _FieldProblem(ValueError):
    def __init__(self, field: str, expected: str) -> None:
        self.field = field
        self.expected = expected
        super().__init__(expected)


# The password runs to the last "@" of the authority (an unencoded "@" in it must not leave
# its tail in clear), never past "/", "?" or "#".
_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^/?#\s]+)@", re.I
)
# Query parameters that carry a credential: redis-py and libpq both read ``?password=``
# (libpq also ``sslpassword``); the others are common spellings of a token in a URL.
_QUERY_SECRET = re.compile(
    r"(?P<lead>[?&;])(?P<key>[^=&;#\s]*(?:password|passwd|pwd|secret|token|api_?key)[^=&;#\s]*)="
    r"(?P<value>[^&;#\s]*)",
    re.I,
)


def redact_url(url: str) -> str:
    """Mask the password in ``scheme://user:password@host`` and the value of every query
    parameter that names a credential (``?password=``, ``&sslpassword=``, ``?token=`` …);
    leave everything else. Works on any text that contains URLs (error messages)."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
    return _QUERY_SECRET.sub(lambda m: f"{m['lead']}{m['key']}=***", text)


def url_secrets(url: str) -> list[str]:
    """The credentials ``url`` carries in clear: its password and its secret query values
    (what :func:`redact_url` masks), for exact-match scrubbing."""
    found = [m["pw"] for m in _URL_PASSWORD.finditer(url)]
    found += [m["value"] for m in _QUERY_SECRET.finditer(url) if m["value"]]
    # Clients decode percent-escapes, so an error may show the decoded form.
    return list(dict.fromkeys([*found, *(unquote(f) for f in found)]))


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    loc = error.get("loc") or ()
    field = str(loc[0]) if loc else ""
    ctx = error.get("ctx") or {}
    inner = ctx.get("error")
    if isinstance(inner, _FieldProblem):
        return inner.field.upper(), f"expected {inner.expected}"
    message = str(error.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    got = error.get("input")
    if error.get("type") in {"int_parsing", "float_parsing", "bool_parsing", "literal_error"} or (
        isinstance(got, str | int | float) and not isinstance(inner, ValueError)
    ):
        message = f"{message} (got {got!r})" if field not in _SECRET_FIELDS else message
    if not message.startswith("expected") and isinstance(inner, ValueError):
        message = f"expected {message}"
    return field.upper(), message


_SECRET_FIELDS = {
    "sentry_dsn",
    "flower_basic_auth",
    "database_url",
    "redis_url",
    "broker_url",
    "channel_secret_keys",
    "api_admin_key",
}


def load_settings(**overrides: Any) -> Settings:
    """Read and validate settings from the environment (and ``.env``); raise SettingsError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        variable, problem = _describe(dict(first))
        if not variable:
            variable = "SETTINGS"
        if variable.lower() in _SECRET_FIELDS:
            problem = problem.split(" (got ")[0]
        raise SettingsError(variable, problem) from None
