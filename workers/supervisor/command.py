"""``hyperwatch up``: the whole system on one machine, as supervised child processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from types import FrameType

import click

from runtime.lifecycle import EXIT_FAILURE
from workers.context import UsageError, current_settings
from workers.supervisor.child import Child, ChildSpec, PrefixedOutput
from workers.supervisor.plan import (
    MAX_INGESTERS,
    FlowerRefused,
    PlanError,
    UpOptions,
    build_plan,
    flower_conf,
)
from workers.supervisor.preflight import Unreachable, require_redis
from workers.supervisor.summary import summary_lines
from workers.supervisor.supervisor import STOP_SIGNALS, Supervisor, describe


class DependencyUnreachable(click.ClickException):
    """One line on stderr and exit 1: nothing was started."""

    exit_code = EXIT_FAILURE

    def show(self, file: object = None) -> None:
        click.echo(f"hyperwatch: {self.format_message()}", err=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_once(spec: ChildSpec, output: PrefixedOutput) -> tuple[int | None, bool]:
    """Run a one-shot step to completion with prefixed output.

    Returns its exit code (None if it overran ``stop_timeout_s`` and was killed) and whether
    a stop signal arrived meanwhile; such a signal is passed on to the step as SIGTERM.
    """
    child = Child(spec, output)
    received: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        child.send(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in STOP_SIGNALS}
    try:
        child.start()
        returncode = child.wait(spec.stop_timeout_s)
        if returncode is None:
            child.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return returncode, bool(received)


@click.command()
@click.option(
    "--feed",
    type=click.Choice(["live", "sim"]),
    default="live",
    show_default=True,
    help="live: the exchange at HL_WS_URL/HL_INFO_URL. sim: also run `hyperwatch simulate` "
    "on a free port and point the ingester at it.",
)
@click.option("--flower/--no-flower", default=True, show_default=True, help="Run Flower.")
@click.option(
    "--api/--no-api",
    default=True,
    show_default=True,
    help="Run `hyperwatch api` on API_HOST:API_PORT (API_PORT=0 turns it off too).",
)
@click.option(
    "--worker-concurrency",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="Worker pool processes (each opens up to DATABASE_MAX_CONNECTIONS).",
)
@click.option(
    "--ingesters",
    type=click.IntRange(1, MAX_INGESTERS),
    default=1,
    show_default=True,
    help="Ingesters for the one feed: one leads, the others stand by to take over. Each "
    "gets its own health port: INGESTER_HEALTH_PORT, then the ports after it.",
)
@click.option(
    "--sim-users",
    type=click.IntRange(0, 50),
    default=2,
    show_default=True,
    help="--feed sim: simulated wallets, tracked so positions and fills flow.",
)
@click.option(
    "--sim-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=50.0,
    show_default=True,
    help="--feed sim: trades per second.",
)
@click.option("--dry-run", is_flag=True, help="Print the processes as JSON and start nothing.")
@click.pass_context
def up(
    ctx: click.Context,
    feed: str,
    flower: bool,
    api: bool,
    worker_concurrency: int,
    ingesters: int,
    sim_users: int,
    sim_rate: float,
    dry_run: bool,
) -> None:
    """Run ingester, worker, beat, Flower and the API (and the simulator) until SIGTERM or Ctrl-C.

    Migrates the database first, then prints one block saying where everything is. The
    first SIGTERM/SIGINT drains every process in order (the API, the ingesters, simulator,
    beat, worker, Flower) and ends with "all stopped"; a second one kills them at once. Exit 0
    when all drained cleanly, 1 on a failure, 2 on a bad setting, 3 after a forced kill.
    """
    settings = current_settings()
    conf = flower_conf()
    if flower and conf is None:
        # Without it Flower would run without its guard (and unbounded history).
        raise UsageError(
            "flowerconfig.py is not installed with hyperwatch, so Flower would start unguarded: "
            "reinstall hyperwatch, or run with --no-flower"
        )
    options = UpOptions(
        feed="sim" if feed == "sim" else "live",
        flower=flower,
        api=api,
        flower_conf=conf,
        worker_concurrency=worker_concurrency,
        sim_users=sim_users,
        sim_rate=sim_rate,
        sim_port=_free_port() if feed == "sim" else 0,
        ingesters=ingesters,
    )
    try:
        plan = build_plan(settings, options, os.environ, sys.executable)
    except FlowerRefused as exc:
        raise UsageError(f"Flower not started: {exc}") from None
    except PlanError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param_hint="'--ingesters'") from None
    if dry_run:
        steps = describe([plan.migrate, *plan.children])
        click.echo(json.dumps({"start": steps, "stop_order": list(plan.stop_order)}, indent=2))
        return
    try:
        warnings = require_redis(settings)
    except Unreachable as exc:
        raise DependencyUnreachable(str(exc)) from None

    output = PrefixedOutput(sys.stdout.buffer)
    supervisor = Supervisor(
        plan.children, plan.stop_order, output, summary=summary_lines(settings, options)
    )
    for warning in warnings:
        supervisor.say(f"warning: {warning}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    returncode, interrupted = run_once(plan.migrate, output)
    if interrupted or returncode != 0:
        if interrupted:
            outcome = "interrupted"
        else:
            outcome = "timed out" if returncode is None else f"exited with code {returncode}"
        supervisor.say(f"database migration {outcome}; nothing else started")
        ctx.exit(EXIT_FAILURE)
    ctx.exit(supervisor.run())
