"""``hyperwatch health``: is the deployment healthy? Exit 0 healthy, 1 degraded, 2 unhealthy.

``hyperwatch health`` checks every dependency (see ``runtime/health.py`` for what each
status means) and prints one line per check; ``--json`` prints the report as JSON and
``--metrics`` as Prometheus text (for a textfile collector or a quick look). The exit code
is the overall status in every form.

``hyperwatch health worker`` and ``hyperwatch health beat`` are liveness probes: they read
only the process's heartbeat file (no broker, no database), exit 0 when it is fresh, 2 when
stale or missing.
"""

from __future__ import annotations

from collections.abc import Iterator

import click
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from runtime.health import SNAPSHOT_DEFS, HealthReport, Probe, Status, judge, samples
from runtime.heartbeat import file_age, heartbeat_path
from runtime.metrics_export import gauge_families
from workers.context import current_settings

_SECONDS = click.FloatRange(min=0, min_open=True)
_MAX_AGE_HELP = "Seconds a heartbeat may be old (default HEALTH_WORKER_HEARTBEAT_STALE_S)."
_COLOURS = {Status.HEALTHY: "green", Status.DEGRADED: "yellow", Status.UNHEALTHY: "red"}


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--metrics", "as_metrics", is_flag=True, help="Print Prometheus text format.")
@click.pass_context
def health(ctx: click.Context, as_json: bool, as_metrics: bool) -> None:
    """Check database, Redis, queues, ingest, workers, memory and beat (exit 0/1/2)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = current_settings()
    probe = Probe.from_settings(settings)
    try:
        measurements = probe.measure()
    finally:
        probe.close()
    report = judge(measurements, settings)
    if as_metrics:
        collected = samples(measurements, report, settings)
        click.echo(_exposition(collected), nl=False)
    elif as_json:
        click.echo(report.to_json())
    else:
        _print(report)
    ctx.exit(int(report.status))


def _print(report: HealthReport) -> None:
    width = max(len(c.name) for c in report.checks)
    for check in report.checks:
        status = click.style(f"{check.status!s:<9}", fg=_COLOURS[check.status])
        click.echo(f"{check.name:<{width}}  {status}  {check.reason}")
    overall = click.style(str(report.status), fg=_COLOURS[report.status], bold=True)
    click.echo(f"{'overall':<{width}}  {overall}")


class _Samples(Collector):
    def __init__(self, collected: list[tuple[str, float, dict[str, str]]]) -> None:
        self._collected = collected

    def collect(self) -> Iterator[Metric]:
        yield from gauge_families(SNAPSHOT_DEFS, self._collected)


def _exposition(collected: list[tuple[str, float, dict[str, str]]]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Samples(collected))
    return generate_latest(registry).decode()


@health.command()
@click.option(
    "--node",
    default="celery@%h",
    show_default=True,
    help="The worker's node name (celery -n); %h is this host's name.",
)
@click.option("--max-age", type=_SECONDS, default=None, help=_MAX_AGE_HELP)
def worker(node: str, max_age: float | None) -> None:
    """Liveness probe: exit 0 if this worker's heartbeat file is fresh, 2 if not."""
    _probe_file("worker", node, max_age)


@health.command()
@click.option("--node", default="beat@%h", show_default=True, help="%h is this host's name.")
@click.option("--max-age", type=_SECONDS, default=None, help=_MAX_AGE_HELP)
def beat(node: str, max_age: float | None) -> None:
    """Liveness probe: exit 0 if this beat ticked recently (leader or standby), 2 if not."""
    _probe_file("beat", node, max_age)


def _probe_file(kind: str, node: str, max_age: float | None) -> None:
    from celery.utils.nodenames import host_format

    settings = current_settings()
    name = host_format(node)
    limit = settings.health_worker_heartbeat_stale_s if max_age is None else max_age
    age = file_age(heartbeat_path(settings.data_dir, name))
    if age.age_s is None:
        click.echo(f"{kind} {name}: no heartbeat file at {age.path}", err=True)
        click.get_current_context().exit(int(Status.UNHEALTHY))
    elif not age.fresh(limit):
        click.echo(f"{kind} {name}: heartbeat {age.age_s:.1f} s old (limit {limit:g} s)", err=True)
        click.get_current_context().exit(int(Status.UNHEALTHY))
    else:
        click.echo(f"{kind} {name}: alive, heartbeat {age.age_s:.1f} s old")
