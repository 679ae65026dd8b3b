"""Every Redis key hyperwatch uses, in one place: its type, who writes it, how long it lives.

Like the closed metric list (``runtime.metrics``), this is the contract between processes:
a reader learns a key's name here, never by importing the writer's module. Each entry is a
:class:`Key` whose ``template`` may have ``{placeholders}``; :meth:`Key.name` fills them.
No other module of the product spells an ``hw:`` literal (tests aside); a unit test holds
that, and ``docs/OPERATIONS.md`` points here for ``redis-cli`` work.

Queues are named here too (:data:`QUEUE_NAMES`): on the Redis broker each is a list of
that name, and the ingester, health and the supervisor need the names without Celery's
configuration. kombu's own bookkeeping (``unacked*``, bindings) is kombu's and not listed.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Final, Literal

RedisType = Literal["string", "hash", "zset", "list", "channel"]


@dataclass(frozen=True, slots=True)
class Key:
    template: str
    type: RedisType
    writer: str
    ttl: str
    meaning: str

    def name(self, **parts: object) -> str:
        """The key with its placeholders filled (a key without any takes no arguments)."""
        return self.template.format(**parts) if parts else self.template

    @property
    def prefix(self) -> str:
        """Everything before the first placeholder, for SCAN patterns and prefix tests."""
        return self.template.split("{", 1)[0]

    @property
    def pattern(self) -> str:
        """A SCAN/KEYS glob matching every key of this entry."""
        fields = [f for _, f, _, _ in string.Formatter().parse(self.template) if f]
        return self.template.format(**dict.fromkeys(fields, "*"))


# One queue per kind of work, so a notification backlog never delays persisting trades and
# each can get its own workers (celeryconfig.py declares them).
QUEUE_NAMES: Final = ("ingest", "alerts", "notify", "maintenance")

# --- ingester → alerts, health -------------------------------------------------------------
LATEST_MIDS: Final = Key(
    "hw:latest:mid",
    "hash",
    "ingester (workers.ingester.cache)",
    "none",
    "coin → {px, time} of the newest mid; alert coin validation and health read it",
)
LATEST_CONTEXTS: Final = Key(
    "hw:latest:ctx",
    "hash",
    "ingester (workers.ingester.cache)",
    "none",
    "coin → the newest AssetContext wire dict",
)
INGEST_LAST_EVENT: Final = Key(
    "hw:ingest:last_event_ms",
    "hash",
    "ingester (workers.ingester.cache)",
    "none",
    "stream → ms of the newest event delivered; health's ingest check",
)
INGESTER_HEARTBEAT: Final = Key(
    "hw:ingester:{ingester_id}:heartbeat",
    "string",
    "ingester (workers.ingester.cache)",
    "60 s, renewed while the ingester runs",
    "ms of the ingester's last write cycle",
)

# --- ingester → its next start: the gap journal (workers.ingester.gaps) --------------------
GAPS_OPEN: Final = Key(
    "hw:gaps:open:{feed}",
    "hash",
    "ingester (workers.ingester.cache, from the gap journal)",
    "none; a field is deleted when its gap closes",
    "stream|key → the open gap (JSON); the next start of that INGESTER_NAME keeps them open",
)
GAPS_NEWEST: Final = Key(
    "hw:gaps:newest:{feed}",
    "hash",
    "the feed's leading ingester (workers.ingester.cache, fenced by INGEST_LEASE)",
    "none",
    "stream|key → ms of the newest event *published*, and field `*` → the newest over every "
    "key: the feed's record is complete up to there. The next leader (a standby taking over, "
    "or the next start) resumes from it; a key without an open gap then opens a crash gap "
    "unless the new leader's own buffer reaches back that far",
)

# --- ingesters of one feed: leadership ----------------------------------------------------
INGEST_LEASE: Final = Key(
    "hw:ingest:lease:{feed}",
    "string",
    "ingester (workers.ingester.lease)",
    "INGEST_LEASE_TTL_S, renewed by the leader several times a second",
    "`token:owner` of the ingester that publishes the feed; token from INGEST_FENCE",
)
INGEST_FENCE: Final = Key(
    "hw:ingest:fence:{feed}",
    "string",
    "ingester (workers.ingester.lease)",
    "none",
    "counter: the fencing token, incremented at every acquisition; journal writes carry it",
)
INGEST_CANDIDATES: Final = Key(
    "hw:ingest:candidates:{feed}",
    "hash",
    "ingester (workers.ingester.lease)",
    "a day after the last write; stale fields are ignored (and trimmed by the leader)",
    "owner → JSON {ms, ready, leading}: each ingester of the feed, every lease cycle; a "
    "leader stopping hands over (no shutdown gaps) only when another one is ready",
)

# --- workers → ingester: end-to-end confirmations ------------------------------------------
BATCHES_DONE: Final = Key(
    "hw:done:{source}",
    "zset",
    "workers (runtime.confirmations)",
    "24 h after the last write; members older than 1 h trimmed",
    "batch seq → ms it was committed, per publishing ingester",
)

# --- broker transport -----------------------------------------------------------------------
UNDECODABLE: Final = Key(
    "hw:undecodable",
    "list",
    "workers (runtime.transport)",
    "none; newest 1,000 kept",
    "queue items that were not kombu messages, kept raw for inspection",
)

# --- worker liveness and health -------------------------------------------------------------
WORKER_HEARTBEAT: Final = Key(
    "hw:worker:{node}:heartbeat",
    "string",
    "worker main process (runtime.heartbeat)",
    "3 heartbeat intervals",
    "time, pid and resident memory of a worker node",
)
HEALTH_SNAPSHOT: Final = Key(
    "hw:health:snapshot",
    "string",
    "beat job health_snapshot (runtime.metrics_export)",
    "3 snapshot intervals",
    "the latest health measurements every /metrics serves",
)

# --- beat ------------------------------------------------------------------------------------
BEAT_LOCK: Final = Key(
    "hw:beat:lock",
    "string",
    "the scheduling beat (tasks.maintenance.beat_guard)",
    "BEAT_LOCK_TIMEOUT_S, renewed every tick",
    "owner id of the one beat that schedules",
)
BEAT_LAST_RUN: Final = Key(
    "hw:beat:last_run",
    "hash",
    "the scheduling beat (tasks.maintenance.beat_guard)",
    "none",
    "entry name → epoch seconds of its last send, so a takeover does not double-send",
)

# --- subscriber API (workers.api) ------------------------------------------------------------
API_RATE: Final = Key(
    "hw:api:rate:{key_id}:{minute}",
    "string",
    "every `hyperwatch api` process (runtime.rate_limit)",
    "2 minutes",
    "requests made with API key `key_id` in that epoch minute, against its tier's "
    "TIER_<TIER>_API_REQUESTS_PER_MINUTE (shared by every API process)",
)

# --- REST budget -----------------------------------------------------------------------------
REST_WEIGHT: Final = Key(
    "hw:rest:weight:{minute}",
    "string",
    "every /info caller (runtime.rest_budget: the position poller, healing, meta refresh)",
    "2 minutes",
    "REST weight spent in that epoch minute, against REST_WEIGHT_PER_MINUTE",
)

# --- the position poller (tasks.maintenance.positions_poll) ---------------------------------
POLL_LOCK: Final = Key(
    "hw:poll:lock",
    "string",
    "the running position poll (tasks.maintenance.positions_poll)",
    "60 s, renewed while the run polls",
    "owner id of the one poll run in progress; an overlapping run skips",
)
POLL_WALLETS: Final = Key(
    "hw:poll:wallets",
    "hash",
    "the position poller",
    "none; fields of wallets no longer tracked are deleted by the next run",
    "address → JSON {last: ms of the last successful poll, tried: ms of the last attempt, "
    "class: hot|active|idle at that poll, changed: ms its positions last changed, fp: "
    "a digest of its positions}; `hyperwatch wallets list` reads it",
)
POLL_RUN: Final = Key(
    "hw:poll:run",
    "hash",
    "the position poller",
    "none",
    "started_ms → the last run's start (paces the next run's share of the budget); "
    "warned_ms → the last 'budget too small' warning (one every 10 minutes)",
)
POLL_GAUGES: Final = Key(
    "hw:poll:gauges",
    "string",
    "the position poller (runtime.metrics_export.write_snapshot)",
    "a minute: gauges vanish when the poller stops running",
    "the latest run's gauge samples (wallets and overdue wallets per class) every /metrics serves",
)

# --- alerts ----------------------------------------------------------------------------------
ALERTS_VERSION: Final = Key(
    "hw:alerts:version",
    "string",
    "every alert write path (domain.alerts.book.announce)",
    "none",
    "incremented after each committed alert change; workers reload when it moves",
)
ALERTS_CHANGES: Final = Key(
    "hw:alerts:changes",
    "zset",
    "domain.alerts.book.announce",
    "none; newest versions kept",
    "changed alert ids scored by the version that changed them",
)
ALERTS_STARTED: Final = Key(
    "hw:alerts:started_ms",
    "string",
    "alert workers (domain.alerts.shared_state)",
    "none",
    "when the shared market view began; a coin unseen since is unknown, not zero",
)
ALERTS_SEEN: Final = Key(
    "hw:alerts:seen:{stream}",
    "hash",
    "alert workers (domain.alerts.shared_state)",
    "none",
    "field → ms of the newest event applied, so an older batch never overwrites a newer; "
    "positions also '<wallet>|' → when that wallet's positions were first seen",
)
ALERTS_HOLDS: Final = Key(
    "hw:alerts:holds",
    "hash",
    "alert workers (tasks.alerts.evaluate: the tick starts holds, any evaluation ends them)",
    "none; a field is deleted when its hold ends",
    "coin → JSON {coin, since, reason} of a coin whose alerts are held (stale data or an "
    "open gap); its subscribers were sent the 'data stale' notice for that `since`",
)
ALERTS_VALUE: Final = Key(
    "hw:alerts:val:{stream}",
    "hash",
    "alert workers (domain.alerts.shared_state)",
    "none",
    "field → that newest value",
)
ALERTS_REPLACED: Final = Key(
    "hw:alerts:replaced:{stream}",
    "hash",
    "alert workers (domain.alerts.shared_state)",
    "none",
    "positions: field → the value the newest one replaced (or 'flat'), so a retried or "
    "redelivered batch judges the same position change again",
)
ALERTS_HISTORY: Final = Key(
    "hw:alerts:hist:{tier}:{series}:{coin}",
    "zset",
    "alert workers (domain.alerts.shared_state)",
    "trimmed to the tier's window",
    "bucket start (ms) → the series' value, for window rules",
)

# --- notifications ---------------------------------------------------------------------------
NOTIFY_LOCK: Final = Key(
    "hw:notify:lock:{notification_id}",
    "string",
    "notify workers (tasks.notify.outbox)",
    "one attempt's longest time",
    "at most one delivery of a row at a time, released by token",
)
NOTIFY_SCHEDULED: Final = Key(
    "hw:notify:scheduled:{notification_id}",
    "string",
    "notify workers, the outbox sweeper",
    "the retry's delay plus a margin",
    "a retry is on its way; the sweeper leaves the row alone",
)
NOTIFY_GROUP: Final = Key(
    "hw:notify:group:{channel_id}",
    "hash",
    "notify workers (domain.notify.grouping)",
    "a day after the last write",
    "a channel's grouping state: `until` (its group interval ends, ms), `flush` (when its "
    "digest is due, ms), `tokens` and `ts` (its rate budget's bucket)",
)
NOTIFY_WAITING: Final = Key(
    "hw:notify:waiting:{channel_id}",
    "zset",
    "notify workers (domain.notify.grouping)",
    "a day after the last write; members leave when their digest is committed",
    "ids of the channel's pending notifications waiting for its next digest",
)
NOTIFY_MENTIONED: Final = Key(
    "hw:notify:mentioned:{channel_id}",
    "hash",
    "notify workers (domain.notify.grouping)",
    "a day after the last write",
    "alert id → ms it was last delivered on the channel (alone or in a digest): "
    "NOTIFY_REPEAT_INTERVAL_S counts from it",
)
NOTIFY_DUE: Final = Key(
    "hw:notify:due",
    "zset",
    "notify workers (tasks.notify.due)",
    "members leave when their digest has run",
    "channel id → ms its digest is due (or, while a flush runs it, when that flush's claim "
    "lapses): what `hyperwatch.notify.flush_due` runs",
)
NOTIFY_DUE_TICK: Final = Key(
    "hw:notify:due-tick:{tick_ms}",
    "string",
    "notify workers (tasks.notify.due)",
    "until a minute after its tick",
    "a `flush_due` message is on its way for this tick: one message per tick, whatever the "
    "channels due then",
)
NOTIFY_USER_CHANNEL: Final = Key(
    "hw:notify:user:{user_id}",
    "channel",
    "notify workers (domain.notify.channels.redis_pubsub)",
    "pub/sub: nothing is kept",
    "a subscriber's redis channel notifications",
)

REGISTRY: Final[tuple[Key, ...]] = tuple(v for v in list(globals().values()) if isinstance(v, Key))
