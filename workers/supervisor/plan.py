"""What ``hyperwatch up`` runs: the processes, their commands, environments and stop budgets.

Pure: settings and options in, :class:`Plan` out; no process is started here. Every child
runs under the supervisor's own interpreter (``sys.executable -m …``), so the one-machine run
uses exactly the installed code, whatever ``PATH`` says.

The children are the same processes a deployment runs (docker-compose.yml, deploy/), with
the same environment contract: ``REMAP_SIGTERM=SIGQUIT`` (billiard reads it from the
environment at import; it turns the worker's SIGTERM into a soft shutdown, see
celeryconfig.py) and unbuffered output so log lines arrive as they are written.

``--ingesters N`` runs N ingesters for the one feed (``ingester``, ``ingester-2``, …): the
same command and environment, ``INGESTER_NAME`` included, so one leads and the others stand
by; each gets its own health port (``ingester_health_ports``).

Output is for a person at a terminal: the supervisor prints one summary block once
everything runs (``summary.py``), so Celery's start-up banners are off (``--quiet``) and
Flower logs only warnings, unless ``LOG_LEVEL=DEBUG``. Per-task lines are DEBUG in every
process anyway (``runtime.observability``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from celeryconfig import QUEUE_NAMES
from runtime.brokers import for_settings
from settings import Settings
from workers import flower_guard
from workers.supervisor import wording
from workers.supervisor.child import ChildSpec, Gate
from workers.supervisor.readiness import WorkerAnswersPing

Feed = Literal["live", "sim"]

# Stop order: the ingester first so it flushes its last batches while the broker is up;
# the simulator after it, so the ingester does not see its feed vanish and reconnect while
# draining; beat before the worker so nothing new is scheduled into a draining worker;
# Flower last, so it shows the drain. "ingester" stands for every ingester (--ingesters N,
# see ingester_stop_order).
# The API first of all: it stops taking requests and finishes those in flight, so no
# subscriber's write meets a pipeline that is already draining.
STOP_ORDER = ("api", "ingester", "simulator", "beat", "worker", "flower")

# `--ingesters N`: hot standbys for one feed. They share the environment, INGESTER_NAME
# included (one of them leads and publishes, the others stand by), and differ only in their
# health port: INGESTER_HEALTH_PORT, then the ports after it.
MAX_INGESTERS = 8

SIM_HOST = "127.0.0.1"
SIM_DEFAULT_COINS = ("BTC", "ETH", "SOL")

# Seconds each process may take to drain after SIGTERM before it is killed. The worker's
# budget is derived from WORKER_SOFT_SHUTDOWN_TIMEOUT_S (see worker_stop_timeout_s).
INGESTER_STOP_TIMEOUT_S = 30.0
SIMULATOR_STOP_TIMEOUT_S = 10.0
BEAT_STOP_TIMEOUT_S = 15.0
FLOWER_STOP_TIMEOUT_S = 10.0
ADMIN_KEY_VARIABLE = "API_ADMIN_KEY"
API_STOP_TIMEOUT_S = 30.0  # uvicorn's own grace (workers.api.command.GRACE_S) and its exit
MIGRATE_TIMEOUT_S = 300.0
# Above the soft-shutdown wait: the cancel, message restore and pool teardown that follow it.
WORKER_STOP_MARGIN_S = 15.0
# Flower waits this long for the worker's first answer, then starts anyway.
FLOWER_WAITS_FOR_WORKER_S = 60.0
# The worker's node name (`-n`): the default `hyperwatch health worker` looks for (its --node).
WORKER_NODE = "celery@%h"
# Flower's own logging (tornado) per LOG_LEVEL: its INFO lines are a start-up banner that
# the summary replaces.
# Bind addresses whose port the supervisor's check (127.0.0.1) reaches.
_REACHABLE_FROM_LOOPBACK = ("127.0.0.1", "localhost", "0.0.0.0", "")
FLOWER_LOGGING = {"DEBUG": "info", "INFO": "warning", "WARNING": "warning", "ERROR": "error"}


class PlanError(ValueError):
    """Options that cannot make a plan; the message is one line for the operator."""


class FlowerRefused(PlanError):
    """Flower would be exposed without (good) credentials (``workers.flower_guard``)."""


@dataclass(frozen=True)
class UpOptions:
    feed: Feed = "live"
    flower: bool = True
    # Flower's config file (flowerconfig.py: auth guard, history bound). Flower only looks
    # in the working directory by default, and `up` may run from anywhere; `up` refuses to
    # start Flower without it.
    flower_conf: Path | None = None
    worker_concurrency: int = 2
    sim_users: int = 2
    sim_rate: float = 50.0
    sim_port: int = 0  # the port the simulator gets (chosen free by the command)
    ingesters: int = 1  # ingester processes for the one feed (hot standbys beyond the first)
    api: bool = True  # `hyperwatch api` too, when API_PORT is not 0

    def __post_init__(self) -> None:
        if not 1 <= self.ingesters <= MAX_INGESTERS:
            raise PlanError(
                f"--ingesters must be between 1 and {MAX_INGESTERS}, not {self.ingesters}"
            )


@dataclass(frozen=True)
class Plan:
    migrate: ChildSpec
    children: tuple[ChildSpec, ...]  # in start order
    stop_order: tuple[str, ...]

    def names(self) -> list[str]:
        return [c.name for c in self.children]


def worker_stop_timeout_s(settings: Settings) -> float:
    """The worker's SIGTERM budget: its soft-shutdown wait plus the cold shutdown after it.

    With REMAP_SIGTERM a worker that has a task running sleeps the full soft-shutdown
    timeout (Celery does not end the wait early when the task finishes), then cancels and
    requeues what still runs: 45 s + 15 s = 60 s with the defaults.
    """
    return settings.worker_soft_shutdown_timeout_s + WORKER_STOP_MARGIN_S


def flower_conf() -> Path | None:
    """The installed flowerconfig.py (a top-level module of the distribution, beside
    celeryconfig.py), found without importing it: importing runs Flower's guard."""
    spec = importlib.util.find_spec("flowerconfig")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).resolve()
    return path if path.is_file() else None


def sim_users(count: int) -> list[str]:
    """The simulator's generated wallet addresses (stable across seeds, see its market)."""
    from workers.simulator.market import sim_user_address

    return [sim_user_address(i) for i in range(count)]


def sim_coins(settings: Settings) -> list[str]:
    return list(SIM_DEFAULT_COINS) if settings.all_coins else list(settings.coins)


def ingester_names(count: int) -> list[str]:
    """The ingester children in start order: ``ingester``, ``ingester-2``, … ``ingester-N``."""
    return ["ingester", *(f"ingester-{k}" for k in range(2, count + 1))]


def ingester_stop_order(count: int) -> list[str]:
    """The last started first: the first ingester, the one most likely to lead, stops last,
    so stopping the others (standbys) makes no leader hand over to a process about to stop."""
    return list(reversed(ingester_names(count)))


def ingester_health_ports(settings: Settings, options: UpOptions) -> dict[str, int]:
    """Each ingester's health port (ingester k: INGESTER_HEALTH_PORT + k - 1); {} when off.

    Raises :class:`PlanError` when the ports run past 65535 or an added one (ingester-2 on)
    is a port another process of the plan listens on (the worker's metrics, Flower).
    """
    base = settings.ingester_health_port
    if not base:
        return {}
    count = options.ingesters
    last = base + count - 1
    if last > 65535:
        raise PlanError(
            f"{count} ingesters need health ports {base}-{last}, past 65535: lower "
            "INGESTER_HEALTH_PORT (or set it to 0 to turn the ingesters' health servers off)"
        )
    ports = {name: base + k for k, name in enumerate(ingester_names(count))}
    taken = {"WORKER_METRICS_PORT": settings.worker_metrics_port}
    if options.flower:
        taken["FLOWER_PORT"] = settings.flower_port
    for name, port in list(ports.items())[1:]:
        for variable, other in taken.items():
            if port == other:
                raise PlanError(
                    f"{name}'s health port would be {port}, which is {variable}: "
                    f"move INGESTER_HEALTH_PORT or {variable}"
                )
    return ports


def build_plan(
    settings: Settings, options: UpOptions, base_env: Mapping[str, str], python: str
) -> Plan:
    env = _common_env(settings, options, base_env)
    quiet = () if settings.log_level == "DEBUG" else ("--quiet",)  # banners: see above
    celery = (python, "-m", "celery", "-A", "tasks", *quiet)
    hyperwatch = (python, "-m", "workers.cli")
    log_level = settings.log_level

    children: list[ChildSpec] = []
    if options.feed == "sim":
        children.append(_simulator(settings, options, env, hyperwatch))
    worker = (
        *celery, "worker",
        "-Q", ",".join(QUEUE_NAMES),
        "-c", str(options.worker_concurrency),
        "-n", WORKER_NODE,
        "--loglevel", log_level,
    )  # fmt: skip
    children.append(
        ChildSpec(
            "worker",
            worker,
            env,
            stop_timeout_s=worker_stop_timeout_s(settings),
            rewords=wording.CELERY_WORKER,
        )
    )
    beat = (
        *celery, "beat",
        "--loglevel", log_level,
        # Beat's local state file lives with the other embedded files, not in the cwd.
        "--schedule", str(settings.data_dir / "celerybeat-schedule"),
    )  # fmt: skip
    children.append(ChildSpec("beat", beat, env, stop_timeout_s=BEAT_STOP_TIMEOUT_S))
    # The ingester once everything that consumes what it publishes runs; with
    # --ingesters N, N of them: the same command and environment, each its own health port.
    ports = ingester_health_ports(settings, options)
    for name in ingester_names(options.ingesters):
        ingester_env = env
        if options.ingesters > 1 and name in ports:
            ingester_env = {**env, "INGESTER_HEALTH_PORT": str(ports[name])}
        children.append(
            ChildSpec(
                name=name,
                argv=(*hyperwatch, "ingest"),
                env=ingester_env,
                stop_timeout_s=INGESTER_STOP_TIMEOUT_S,
            )
        )
    if runs_api(settings, options):
        children.append(_api(settings, env, base_env, hyperwatch))
    # Flower last, once the worker answers: it inspects workers as soon as it starts.
    if options.flower:
        children.append(_flower(settings, options, env, base_env, celery))
    migrate = ChildSpec(
        name="migrate",
        argv=(*hyperwatch, "db", "upgrade"),
        env=env,
        stop_timeout_s=MIGRATE_TIMEOUT_S,
    )
    names = {c.name for c in children}
    stop_order = [
        name
        for step in STOP_ORDER
        for name in (ingester_stop_order(options.ingesters) if step == "ingester" else [step])
        if name in names
    ]
    return Plan(migrate=migrate, children=tuple(children), stop_order=tuple(stop_order))


def worker_node() -> str:
    """The node name ``-n celery@%h`` gives the worker on this host."""
    from celery.utils.nodenames import host_format

    return str(host_format(WORKER_NODE))


def _common_env(
    settings: Settings, options: UpOptions, base_env: Mapping[str, str]
) -> dict[str, str]:
    env = dict(base_env)
    env["REMAP_SIGTERM"] = "SIGQUIT"
    env["PYTHONUNBUFFERED"] = "1"
    # Flower reads FLOWER_* variables itself; only the flower child gets them, so its
    # password is not in every process's environment.
    for name in [k for k in env if _is_flower_variable(k)]:
        del env[name]
    # Likewise the API's admin key: only the api child gets it (_api).
    env.pop(ADMIN_KEY_VARIABLE, None)
    if options.feed == "sim":
        base = f"{SIM_HOST}:{options.sim_port}"
        env["HL_WS_URL"] = f"ws://{base}/ws"
        env["HL_INFO_URL"] = f"http://{base}/info"
        env["COINS"] = ",".join(sim_coins(settings))
        wallets = list(settings.tracked_wallets)
        wallets += [a for a in sim_users(options.sim_users) if a not in wallets]
        env["TRACKED_WALLETS"] = ",".join(wallets)
    return env


def _simulator(
    settings: Settings, options: UpOptions, env: Mapping[str, str], hyperwatch: tuple[str, ...]
) -> ChildSpec:
    argv = [
        *hyperwatch, "simulate",
        "--host", SIM_HOST,
        "--port", str(options.sim_port),
        "--coins", ",".join(sim_coins(settings)),
        "--users", str(options.sim_users),
        "--rate", f"{options.sim_rate:g}",
    ]  # fmt: skip
    # Wallets the operator tracks get simulated activity too, so they show positions.
    for address in settings.tracked_wallets:
        argv += ["--user", address]
    return ChildSpec(
        name="simulator",
        argv=tuple(argv),
        env=env,
        stop_timeout_s=SIMULATOR_STOP_TIMEOUT_S,
        listens_on=options.sim_port,
    )


def runs_api(settings: Settings, options: UpOptions) -> bool:
    return options.api and settings.api_port != 0


def _api(
    settings: Settings,
    env: Mapping[str, str],
    base_env: Mapping[str, str],
    hyperwatch: tuple[str, ...],
) -> ChildSpec:
    api_env = dict(env)
    if ADMIN_KEY_VARIABLE in base_env:
        api_env[ADMIN_KEY_VARIABLE] = base_env[ADMIN_KEY_VARIABLE]
    # The summary names the API's URL: wait until it answers there, when reachable.
    reachable = settings.api_host in _REACHABLE_FROM_LOOPBACK
    return ChildSpec(
        "api",
        (*hyperwatch, "api"),
        api_env,
        stop_timeout_s=API_STOP_TIMEOUT_S,
        listens_on=settings.api_port if reachable else None,
    )


def _is_flower_variable(name: str) -> bool:
    return name.upper().startswith("FLOWER_")


def _flower(
    settings: Settings,
    options: UpOptions,
    env: Mapping[str, str],
    base_env: Mapping[str, str],
    celery: tuple[str, ...],
) -> ChildSpec:
    # The guard flowerconfig.py applies inside Flower, applied before anything starts: a
    # refusal is one line from `up` rather than a Flower that exits after the worker began.
    verdict = flower_guard.check(
        address=settings.flower_address,
        port=settings.flower_port,
        unix_socket=bool(base_env.get("FLOWER_UNIX_SOCKET")),
        basic_auth=(
            settings.flower_basic_auth.get_secret_value().split(",")
            if settings.flower_basic_auth is not None
            else []
        ),
        oauth=bool(base_env.get("FLOWER_AUTH") and base_env.get("FLOWER_AUTH_PROVIDER")),
        allow_unauthenticated=settings.flower_allow_unauthenticated,
    )
    if verdict.refusal is not None:
        raise FlowerRefused(verdict.refusal)
    flower_env = dict(env)
    flower_env.update({k: v for k, v in base_env.items() if _is_flower_variable(k)})
    # Flower turns an empty FLOWER_BASIC_AUTH into one empty credential; unset means none.
    flower_env.pop("FLOWER_BASIC_AUTH", None)
    if settings.flower_basic_auth is not None:
        # Through the environment, not argv: argv is visible to every user in `ps`.
        flower_env["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
    argv: tuple[str, ...] = (*celery, "flower")
    if options.flower_conf is not None:
        argv += (f"--conf={options.flower_conf}",)
    argv += (f"--address={settings.flower_address}", f"--port={settings.flower_port}")
    argv += (f"--logging={FLOWER_LOGGING[settings.log_level]}",)
    worker_answers = Gate(
        what="the worker answers a ping",
        ready=WorkerAnswersPing(
            settings.effective_broker_url,
            worker_node(),
            transport_options=for_settings(settings).transport_options(),
        ),
        after="worker",
        timeout_s=FLOWER_WAITS_FOR_WORKER_S,
    )
    # The summary (printed once every child started) names Flower's URL: wait until it
    # answers there, when the supervisor can reach the address it binds.
    reachable = settings.flower_address in _REACHABLE_FROM_LOOPBACK
    return ChildSpec(
        "flower",
        argv,
        flower_env,
        stop_timeout_s=FLOWER_STOP_TIMEOUT_S,
        listens_on=settings.flower_port if reachable else None,
        starts_after=worker_answers,
    )
