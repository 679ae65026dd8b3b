"""``hyperwatch ingest``: parse, call, exit code. The work is in :mod:`service`.

Exit codes: 0 after a graceful stop, 1 after an unexpected failure (restart me), 2 for a
configuration the ingester cannot run with (bad setting, unknown coin, coins and wallets
beyond the exchange's per-IP limits, health port taken, a kombu the broker transport was
not written against), 128 + signal number when a second signal cut the graceful stop short.

``--plan`` prints the subscription plan (shard, sockets, what each carries, per-IP limit
use) and exits 0 without connecting the WebSocket; it reads ``/info`` ``meta`` once to
resolve and check COINS, as the ingester does (exit 1 when ``/info`` does not answer).
"""

from __future__ import annotations

import json
import logging
import sys

import click
import sentry_sdk

from runtime import brokers, transport
from runtime.hyperliquid.universe import InfoUnavailable, UnknownCoin
from runtime.observability import init_sentry, quiet_routine_records
from workers.context import UsageError, current_settings
from workers.ingester.planner import Plan, PlanError
from workers.ingester.service import Ingester
from workers.ingester.signals import SignalHandler


@click.command()
@click.option(
    "--plan",
    "show_plan",
    is_flag=True,
    help="Print the subscription plan (shard, sockets, limits) and exit without connecting.",
)
@click.option("--json", "as_json", is_flag=True, help="With --plan: machine-readable output.")
def ingest(show_plan: bool, as_json: bool) -> None:
    """Stream Hyperliquid market data into Redis as Celery batches (runs until SIGTERM)."""
    settings = current_settings()
    if as_json and not show_plan:
        raise UsageError("ingest: --json goes with --plan")
    if show_plan:
        _print_plan(Ingester(settings), as_json)
        return
    try:
        brokers.for_settings(settings).install()  # the broker kind's patches, before connecting
    except transport.TransportMismatch as exc:
        raise UsageError(str(exc)) from None
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=settings.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    # One line per REST call (httpx: meta refresh) only at DEBUG; failures are logged.
    quiet_routine_records()
    # Unhandled errors reach Sentry when SENTRY_DSN is set (scrubbed like every process's).
    init_sentry(settings, "ingester")
    ingester = Ingester(settings)
    SignalHandler(ingester.stop_event).install()
    try:
        ingester.resolve()
        code = ingester.run()
    except (UnknownCoin, PlanError) as exc:
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


def _print_plan(ingester: Ingester, as_json: bool) -> None:
    try:
        ingester.resolve(retry=False)
        plan = ingester.make_plan()
    except (UnknownCoin, PlanError) as exc:
        raise UsageError(str(exc)) from None
    except InfoUnavailable as exc:
        click.echo(f"ingest --plan: cannot read the coin universe: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2))
        return
    for line in plan_lines(plan):
        click.echo(line)


def plan_lines(plan: Plan) -> list[str]:
    """The plan for a terminal: totals, each socket's lists, then the per-IP limits."""
    index, count = plan.shard
    lines = [
        f"shard {index}/{count}: {len(plan.coins)} coins, {len(plan.users)} wallets on "
        f"WebSocket, {len(plan.polled)} polled over REST (by the workers' poll job)",
        f"{len(plan.connections)} socket(s), at most {plan.per_connection} subscriptions each "
        "(INGEST_SUBSCRIPTIONS_PER_CONNECTION)",
    ]
    for conn in plan.connections:
        lines.append(
            f"  socket {conn.index}: {conn.count} subscriptions"
            f"{' (allMids)' if conn.all_mids else ''}, {len(conn.coins)} coins, "
            f"{len(conn.users)} wallets"
        )
        if conn.coins:
            lines.append(f"    coins: {' '.join(conn.coins)}")
        if conn.users:
            lines.append(f"    wallets: {' '.join(conn.users)}")
    if plan.polled:
        lines.append(f"  polled: {' '.join(plan.polled)}")
    lines.append("per-IP limits: planned / allowed (with headroom) / exchange")
    for name, use in plan.usage().items():
        lines.append(
            f"  {name:<20} {use['planned']:>5} / {use['allowed']:>5} / {use['exchange_limit']:>5}"
        )
    return lines
