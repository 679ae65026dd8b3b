"""Every Celery setting hyperwatch uses, each with the reason it has that value.

Values that depend on the deployment (URLs, timeouts an operator tunes) come from the
validated Settings via :func:`from_settings`; everything else is a decision recorded here.
The semantics behind them: the Celery production reference (``shared/reference/
celery-production.md`` §1, beside the checkout) and docs/OPERATIONS.md.

Not a Celery setting but part of the shutdown contract: processes are started with the
environment variable ``REMAP_SIGTERM=SIGQUIT`` (billiard reads it from the environment at
import, not from config). Orchestrators only send SIGTERM; remapped, it starts a *soft*
shutdown: running tasks get ``worker_soft_shutdown_timeout`` to finish, then anything still
running is cancelled and — because tasks ack late — its message goes back to the queue.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from events import BATCH_CONTENT_TYPE
from runtime.brokers import for_settings
from runtime.keys import QUEUE_NAMES
from settings import Settings

# --- queues and routing ---------------------------------------------------------------------
# The queues (named in runtime/keys.py). Missing queues are an error: a typo in a route
# must not silently create a queue nobody consumes.
# Each queue has a direct exchange of its own name — the shape Celery gives a queue it
# creates from a bare name — so a publisher that only knows the queue name (the ingester
# uses `send_task(name, queue=...)` without this config) routes exactly like the workers.
task_queues = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUE_NAMES
)
task_default_queue = "maintenance"
task_default_exchange = "maintenance"
task_default_routing_key = "maintenance"
task_create_missing_queues = False
task_routes = {
    "hyperwatch.persist.*": {"queue": "ingest", "routing_key": "ingest"},
    "hyperwatch.alerts.*": {"queue": "alerts", "routing_key": "alerts"},
    "hyperwatch.notify.*": {"queue": "notify", "routing_key": "notify"},
    "hyperwatch.maintenance.*": {"queue": "maintenance", "routing_key": "maintenance"},
}

# --- serialization ---------------------------------------------------------------------------
# JSON only: payloads are data from the feed, never pickles; Decimals travel as strings.
# The ingester's batches are JSON too, under their own content type so workers decode them
# with orjson (events.BATCH_CONTENT_TYPE; registered by tasks.application.create_app).
task_serializer = "json"
accept_content = ["json", BATCH_CONTENT_TYPE]
result_serializer = "json"

# --- delivery guarantees -----------------------------------------------------------------------
# Every task is idempotent (unique keys, conditional updates), so acknowledge after the
# task returns: a worker killed mid-batch leaves the message to be redelivered.
task_acks_late = True
# A child killed by SIGKILL/OOM would otherwise have its message acked and lost.
task_reject_on_worker_lost = True
# Failures have been retried by the task's own policy or dead-lettered by then; requeueing
# them again would loop poison messages forever. (5.7 splits the old
# task_acks_on_failure_or_timeout in two.) A hard time limit means the soft one (which the
# retry policy turns into a retry) could not interrupt the task: ack too, same reason.
task_acks_on_failure = True
task_acks_on_timeout = True
# Results live in PostgreSQL; the result backend would only fill Redis.
task_ignore_result = True
task_store_errors_even_if_ignored = False

# --- time limits ---------------------------------------------------------------------------
# (task_time_limit / task_soft_time_limit come from settings: soft = hard - 15 s, so a task
# can give up cleanly, roll back and raise a retryable error before the hard kill.)

# --- worker behaviour --------------------------------------------------------------------------
# Soft shutdown waits only while a task runs. On idle it would sleep the whole timeout
# (45 s per worker per deploy) for nothing: reserved messages, ETA retries included, are
# pushed back by the shutdown's restore (verified with countdown tasks on Redis, reference
# §1.4), and an ETA message that missed it is still unacked and returns after the visibility
# timeout (late ack) — delayed, never lost.
worker_enable_soft_shutdown_on_idle = False
# On broker connection loss, running late-ack tasks will be redelivered anyway: cancel them
# instead of finishing work whose ack can no longer be sent (6.0 default; silences warning).
worker_cancel_long_running_tasks_on_connection_loss = True
# Recycle children to bound slow leaks (prefork).
worker_max_tasks_per_child = 10_000
worker_max_memory_per_child = 512_000  # KiB
# Retries use countdowns; bound how many ETA messages a worker may hold in memory.
worker_eta_task_limit = 1_000
# Flower and task-duration metrics need events.
worker_send_task_events = True
task_send_sent_event = True
# Our own logging config stays in force.
worker_hijack_root_logger = False
# No task is rate limited; skip the token-bucket bookkeeping on every message.
worker_disable_rate_limits = True

# --- broker connection -----------------------------------------------------------------------
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # keep retrying: Redis restarts are expected
# Publishers fail loudly instead of hanging forever when every pooled connection is busy.
broker_pool_acquire_timeout = 30

timezone = "UTC"
enable_utc = True


def from_settings(settings: Settings) -> dict[str, Any]:
    """The deployment-dependent part of the configuration; the broker kind's own settings
    last (runtime/brokers/: RabbitMQ's quorum queues and transport options replace the
    Redis ones above)."""
    broker = for_settings(settings)
    return _common(settings) | broker.celery_config(QUEUE_NAMES)


def _common(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.effective_broker_url,
        "broker_transport_options": {
            # Must exceed the longest task plus its wait in a prefetch buffer, or a
            # running task is redelivered to a second worker (celery#5935). Killed
            # workers' messages come back after this long.
            "visibility_timeout": settings.broker_visibility_timeout_s,
            # kombu 5.7: how often unacked messages past the timeout are swept back. Every
            # 10 s (not kombu's ~100 s), and at least 5 times per timeout so a short one
            # (tests, fast-recovery deployments) is honoured.
            "unacked_restore_interval": max(1, min(10, settings.broker_visibility_timeout_s // 5)),
            "unacked_restore_throttle": 1,
            # Never hang on a half-open connection: time out, reconnect, and health-check
            # the BRPOP connection (kombu 5.7) so a stuck consumer recovers in < 1 min.
            "socket_timeout": 30,
            "socket_connect_timeout": 10,
            "socket_keepalive": True,
            "health_check_interval": 25,
            "retry_on_timeout": True,
            # The broker kind's own (runtime/brokers/: Sentinel's master_name).
            **for_settings(settings).transport_options(),
        },
        "worker_prefetch_multiplier": settings.worker_prefetch_multiplier,
        "worker_soft_shutdown_timeout": settings.worker_soft_shutdown_timeout_s,
        "task_time_limit": settings.task_time_limit_s,
        "task_soft_time_limit": max(1, settings.task_time_limit_s - 15),
    }
