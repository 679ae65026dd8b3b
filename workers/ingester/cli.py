"""``hyperwatch ingest``: parse, call, exit code. The work is in :mod:`service`.

Exit codes: 0 after a graceful stop, 1 after an unexpected failure (restart me), 2 for a
configuration the ingester cannot run with (bad setting, unknown coin, health port taken,
a kombu the broker transport was not written against),
128 + signal number when a second signal cut the graceful stop short.
"""

from __future__ import annotations

import logging
import sys

import click
import sentry_sdk

from runtime import transport
from runtime.hyperliquid.universe import UnknownCoin
from runtime.observability import init_sentry, quiet_routine_records
from workers.context import UsageError, current_settings
from workers.ingester.service import Ingester
from workers.ingester.signals import SignalHandler


@click.command()
def ingest() -> None:
    """Stream Hyperliquid market data into Redis as Celery batches (runs until SIGTERM)."""
    settings = current_settings()
    try:
        transport.install()  # before anything connects
    except transport.TransportMismatch as exc:
        raise UsageError(str(exc)) from None
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    # One line per REST poll (httpx) only at DEBUG; failures are logged by the poller.
    quiet_routine_records()
    # Unhandled errors reach Sentry when SENTRY_DSN is set (scrubbed like every process's).
    init_sentry(settings, "ingester")
    ingester = Ingester(settings)
    SignalHandler(ingester.stop_event).install()
    try:
        ingester.resolve()
        code = ingester.run()
    except UnknownCoin as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        if ingester.health is None and settings.ingester_health_port:
            where = f"{settings.ingester_health_host}:{settings.ingester_health_port}"
            raise UsageError(f"cannot serve health on {where}: {exc.strerror or exc}") from None
        raise
    except Exception as exc:
        # Anything else is a bug: report it and exit non-zero so a supervisor restarts us.
        logging.getLogger(__name__).exception("ingester failed")
        sentry_sdk.capture_exception(exc)
        sentry_sdk.flush(timeout=2.0)
        sys.exit(1)
    sys.exit(code)
