"""The plan of `hyperwatch up`: which processes, with which commands, env and stop budgets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from celeryconfig import QUEUE_NAMES
from settings import Settings, load_settings
from workers.simulator.config import SimulatorConfig
from workers.supervisor import wording
from workers.supervisor.child import ChildSpec
from workers.supervisor.plan import (
    MAX_INGESTERS,
    FlowerRefused,
    Plan,
    PlanError,
    UpOptions,
    build_plan,
    flower_conf,
    ingester_health_ports,
    worker_node,
    worker_stop_timeout_s,
)
from workers.supervisor.readiness import WorkerAnswersPing

PY = "/opt/py/bin/python"
WALLET = "0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291"


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "var")


def plan_for(settings: Settings, env: dict[str, str] | None = None, **options: object) -> Plan:
    return build_plan(settings, UpOptions(**options), env or {"PATH": "/bin"}, PY)  # type: ignore[arg-type]


def by_name(plan: Plan, name: str) -> ChildSpec:
    return next(c for c in plan.children if c.name == name)


def test_given_live_feed_when_planning_then_five_processes_start_and_stop_in_drain_order(
    settings: Settings,
) -> None:
    plan = plan_for(settings)

    assert plan.names() == ["worker", "beat", "ingester", "api", "flower"]
    assert plan.stop_order == ("api", "ingester", "beat", "worker", "flower")


def test_given_the_api_when_planned_then_it_serves_api_port_and_drains_first(
    settings: Settings,
) -> None:
    api = by_name(plan_for(settings), "api")

    assert api.argv[1:] == ("-m", "workers.cli", "api")
    assert api.listens_on == settings.api_port == 8080
    assert api.stop_timeout_s == 30.0
    assert "api" not in plan_for(settings, api=False).names()
    assert "api" not in plan_for(load_settings(data_dir=settings.data_dir, api_port=0)).names()
    beyond = by_name(
        plan_for(load_settings(data_dir=settings.data_dir, api_host="10.0.0.5")), "api"
    )
    assert beyond.listens_on is None  # the supervisor could not reach it to check


def test_given_an_admin_key_when_planning_then_only_the_api_gets_it(settings: Settings) -> None:
    plan = plan_for(settings, {"PATH": "/bin", "API_ADMIN_KEY": "k" * 40})

    assert [c.name for c in plan.children if "API_ADMIN_KEY" in c.env] == ["api"]
    assert "API_ADMIN_KEY" not in plan.migrate.env


def test_given_any_plan_when_built_then_every_process_runs_our_interpreter_with_remapped_sigterm(
    settings: Settings,
) -> None:
    plan = plan_for(settings, feed="sim", sim_port=4321)

    for spec in [plan.migrate, *plan.children]:
        assert spec.argv[0] == PY, spec.name
        assert spec.env["REMAP_SIGTERM"] == "SIGQUIT", spec.name
        assert spec.env["PYTHONUNBUFFERED"] == "1", spec.name
        assert spec.env["PATH"] == "/bin", spec.name


def test_given_worker_when_planned_then_it_consumes_every_queue_and_outlasts_the_soft_shutdown(
    settings: Settings,
) -> None:
    worker = by_name(plan_for(settings, worker_concurrency=3), "worker")

    argv = list(worker.argv)
    assert argv[1:7] == ["-m", "celery", "-A", "tasks", "--quiet", "worker"]
    assert argv[argv.index("-Q") + 1].split(",") == list(QUEUE_NAMES)
    assert argv[argv.index("-c") + 1] == "3"
    assert worker.stop_timeout_s == worker_stop_timeout_s(settings)
    assert worker.stop_timeout_s > settings.worker_soft_shutdown_timeout_s


def test_given_beat_when_planned_then_its_state_file_lives_in_the_data_dir(
    settings: Settings,
) -> None:
    beat = by_name(plan_for(settings), "beat")

    assert beat.argv[1:7] == ("-m", "celery", "-A", "tasks", "--quiet", "beat")
    assert beat.argv[beat.argv.index("--schedule") + 1] == str(
        settings.data_dir / "celerybeat-schedule"
    )


def test_given_sim_feed_when_planning_then_simulator_starts_first_and_feeds_everyone(
    settings: Settings,
) -> None:
    plan = plan_for(settings, feed="sim", sim_port=4321, sim_users=2)

    simulator = plan.children[0]
    assert simulator.name == "simulator"
    assert simulator.listens_on == 4321
    argv = list(simulator.argv)
    assert argv[1:4] == ["-m", "workers.cli", "simulate"]
    assert argv[argv.index("--port") + 1] == "4321"
    assert argv[argv.index("--users") + 1] == "2"
    assert argv[argv.index("--coins") + 1] == "BTC,ETH,SOL"
    assert plan.stop_order == ("api", "ingester", "simulator", "beat", "worker", "flower")
    ingester = by_name(plan, "ingester")
    assert ingester.env["HL_WS_URL"] == "ws://127.0.0.1:4321/ws"
    assert ingester.env["HL_INFO_URL"] == "http://127.0.0.1:4321/info"
    assert ingester.env["COINS"] == "BTC,ETH,SOL"


def test_given_sim_users_when_planning_then_the_ingester_tracks_the_wallets_the_simulator_makes(
    settings: Settings,
) -> None:
    plan = plan_for(settings, feed="sim", sim_port=1, sim_users=2)

    tracked = by_name(plan, "ingester").env["TRACKED_WALLETS"].split(",")

    assert tracked == list(SimulatorConfig(users=2).all_users)
    assert len(set(tracked)) == 2


def test_given_operator_coins_and_wallets_when_sim_feed_then_the_simulator_serves_them(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, coins="ETH,HYPE", tracked_wallets=WALLET)

    plan = plan_for(settings, feed="sim", sim_port=1, sim_users=1)

    argv = list(plan.children[0].argv)
    assert argv[argv.index("--coins") + 1] == "ETH,HYPE"
    assert argv[argv.index("--user") + 1] == WALLET
    env = by_name(plan, "ingester").env
    assert env["COINS"] == "ETH,HYPE"
    assert env["TRACKED_WALLETS"].split(",")[0] == WALLET
    assert len(env["TRACKED_WALLETS"].split(",")) == 2


def test_given_live_feed_when_planning_then_the_feed_urls_are_left_to_settings(
    settings: Settings,
) -> None:
    env = by_name(plan_for(settings), "ingester").env

    assert "HL_WS_URL" not in env
    assert "TRACKED_WALLETS" not in env


def test_given_flower_password_when_planning_then_only_flower_gets_it_and_never_in_argv(
    tmp_path: Path,
) -> None:
    auth = "ops:s3cret-Pa55-w0rd"
    settings = load_settings(data_dir=tmp_path, flower_basic_auth=auth, flower_port=5999)
    env = {"PATH": "/bin", "FLOWER_BASIC_AUTH": auth, "FLOWER_PURGE_OFFLINE_WORKERS": "60"}

    plan = plan_for(settings, env)

    flower = by_name(plan, "flower")
    assert flower.env["FLOWER_BASIC_AUTH"] == auth
    assert flower.env["FLOWER_PURGE_OFFLINE_WORKERS"] == "60"
    assert "--port=5999" in flower.argv
    for spec in [plan.migrate, *plan.children]:
        assert not any("s3cret" in arg for arg in spec.argv), spec.name
        if spec.name != "flower":
            assert not [k for k in spec.env if k.startswith("FLOWER_")], spec.name


def test_given_no_flower_password_when_planning_then_flower_gets_no_empty_credential(
    settings: Settings,
) -> None:
    flower = by_name(plan_for(settings, {"FLOWER_BASIC_AUTH": ""}), "flower")

    assert "FLOWER_BASIC_AUTH" not in flower.env


def test_given_no_flower_when_planning_then_it_is_neither_started_nor_stopped(
    settings: Settings,
) -> None:
    plan = plan_for(settings, flower=False)

    assert "flower" not in plan.names()
    assert "flower" not in plan.stop_order


def test_given_any_plan_when_built_then_the_database_is_migrated_by_the_cli(
    settings: Settings,
) -> None:
    assert plan_for(settings).migrate.argv[1:] == ("-m", "workers.cli", "db", "upgrade")


def test_given_a_flower_config_file_when_planning_then_flower_loads_it_from_any_directory(
    settings: Settings, tmp_path: Path
) -> None:
    conf = tmp_path / "flowerconfig.py"

    flower = by_name(plan_for(settings, flower_conf=conf), "flower")

    assert f"--conf={conf}" in flower.argv


def test_given_this_checkout_when_locating_flowerconfig_then_it_is_beside_celeryconfig() -> None:
    import celeryconfig

    found = flower_conf()

    assert found is not None
    assert found == Path(celeryconfig.__file__).resolve().parent / "flowerconfig.py"


def test_flowerconfig_is_part_of_the_installed_distribution_not_only_of_the_checkout(
    tmp_path: Path,
) -> None:
    # The wheel's top-level modules are pyproject's py-modules; the installed copy is found
    # by its import machinery from any directory, without importing (running) it.
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    assert "flowerconfig" in pyproject["tool"]["setuptools"]["py-modules"]
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib.util as u; print(u.find_spec('flowerconfig').origin)",
        ],
        cwd=tmp_path,
        env={"PATH": "/bin", "PYTHONSAFEPATH": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(found.stdout.strip()) == flower_conf()


@pytest.mark.parametrize("address", ["0.0.0.0", "", "10.0.0.5", "flower.internal", "::"])
def test_given_flower_beyond_loopback_without_credentials_when_planning_then_refused(
    tmp_path: Path, address: str
) -> None:
    settings = load_settings(data_dir=tmp_path, flower_address=address)

    with pytest.raises(FlowerRefused, match="without FLOWER_BASIC_AUTH"):
        plan_for(settings)
    assert "flower" not in plan_for(settings, flower=False).names()  # --no-flower still runs


def test_given_the_explicit_opt_out_when_planning_then_flower_runs_without_credentials(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        data_dir=tmp_path, flower_address="0.0.0.0", flower_allow_unauthenticated=True
    )

    flower = by_name(plan_for(settings), "flower")

    assert "--address=0.0.0.0" in flower.argv and "FLOWER_BASIC_AUTH" not in flower.env


@pytest.mark.parametrize("env", [{"FLOWER_UNIX_SOCKET": "/run/flower.sock"},
                                 {"FLOWER_AUTH": ".*@example.com",
                                  "FLOWER_AUTH_PROVIDER": "flower.views.auth.GithubLoginHandler"}])  # fmt: skip
def test_given_a_unix_socket_or_oauth_when_planning_then_flower_needs_no_basic_auth(
    tmp_path: Path, env: dict[str, str]
) -> None:
    settings = load_settings(data_dir=tmp_path, flower_address="0.0.0.0")
    assert "flower" in plan_for(settings, {"PATH": "/bin", **env}).names()


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0"])
def test_given_a_trivially_weak_flower_password_when_planning_then_refused_anywhere(
    tmp_path: Path, address: str
) -> None:
    settings = load_settings(
        data_dir=tmp_path, flower_address=address, flower_basic_auth="ops:s3cret-pass"
    )

    with pytest.raises(FlowerRefused, match="password of user 'ops' is trivially weak") as info:
        plan_for(settings)
    assert "s3cret-pass" not in str(info.value)


def test_given_flower_when_planned_then_it_starts_last_once_the_worker_answers_a_ping(
    settings: Settings,
) -> None:
    plan = plan_for(settings, feed="sim", sim_port=1)

    assert plan.names()[-1] == "flower"
    assert by_name(plan, "flower").listens_on == settings.flower_port  # before the summary
    gate = by_name(plan, "flower").starts_after
    assert gate is not None
    assert gate.after == "worker"
    assert isinstance(gate.ready, WorkerAnswersPing)
    assert gate.ready.node == worker_node()
    assert gate.ready.broker_url == settings.effective_broker_url
    assert worker_node().startswith("celery@")
    assert "%" not in worker_node()
    worker_argv = by_name(plan, "worker").argv
    assert worker_argv[worker_argv.index("-n") + 1] == "celery@%h"


@pytest.mark.parametrize(
    ("level", "banners", "flower_logging"),
    [("INFO", False, "warning"), ("WARNING", False, "warning"), ("DEBUG", True, "info")],
)
def test_given_a_log_level_when_planned_then_banners_and_flower_follow_it(
    tmp_path: Path, level: str, banners: bool, flower_logging: str
) -> None:
    plan = plan_for(load_settings(data_dir=tmp_path, log_level=level))

    for name in ("worker", "beat"):
        spec = by_name(plan, name)
        assert ("--quiet" not in spec.argv) is banners, name
        assert spec.argv[spec.argv.index("--loglevel") + 1] == level
    assert f"--logging={flower_logging}" in by_name(plan, "flower").argv


def test_given_the_worker_when_planned_then_its_shutdown_lines_are_reworded(
    settings: Settings,
) -> None:
    assert by_name(plan_for(settings), "worker").rewords == wording.CELERY_WORKER


def test_given_one_ingester_when_planned_then_its_environment_is_the_shared_one(
    settings: Settings,
) -> None:
    plan = plan_for(settings)

    assert [n for n in plan.names() if n.startswith("ingester")] == ["ingester"]
    assert "INGESTER_HEALTH_PORT" not in by_name(plan, "ingester").env
    assert by_name(plan, "ingester").env == by_name(plan, "worker").env


def test_given_three_ingesters_when_planned_then_each_runs_the_same_command_on_its_own_port(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, ingester_health_port=8101)
    env = {"PATH": "/bin", "INGESTER_NAME": "btc-feed", "INGESTER_HEALTH_PORT": "8101"}

    plan = plan_for(settings, env, feed="sim", sim_port=4321, ingesters=3)

    names = ["ingester", "ingester-2", "ingester-3"]
    assert plan.names() == ["simulator", "worker", "beat", *names, "api", "flower"]
    specs = [by_name(plan, n) for n in names]
    assert {s.argv for s in specs} == {(PY, "-m", "workers.cli", "ingest")}
    assert [s.env["INGESTER_HEALTH_PORT"] for s in specs] == ["8101", "8102", "8103"]
    assert by_name(plan, "worker").env["INGESTER_HEALTH_PORT"] == "8101"  # the shared one
    for spec in specs:
        # One feed, one lease: everything but the health port is the shared environment.
        assert {**spec.env, "INGESTER_HEALTH_PORT": "8101"} == by_name(plan, "worker").env
        assert spec.env["INGESTER_NAME"] == "btc-feed"
        assert spec.env["HL_WS_URL"] == "ws://127.0.0.1:4321/ws"
        assert spec.stop_timeout_s == by_name(plan, "ingester").stop_timeout_s


def test_given_several_ingesters_when_stopping_then_they_all_stop_first_the_last_started_first(
    settings: Settings,
) -> None:
    plan = plan_for(settings, feed="sim", sim_port=1, ingesters=3)

    assert plan.stop_order == (
        "api", "ingester-3", "ingester-2", "ingester", "simulator", "beat", "worker", "flower",
    )  # fmt: skip
    assert sorted(plan.stop_order) == sorted(plan.names())


def test_given_health_servers_off_when_several_ingesters_then_none_gets_a_port(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, ingester_health_port=0)

    plan = plan_for(settings, ingesters=2)

    assert ingester_health_ports(settings, UpOptions(ingesters=2)) == {}
    for name in ("ingester", "ingester-2"):
        assert "INGESTER_HEALTH_PORT" not in by_name(plan, name).env


@pytest.mark.parametrize("count", [0, -1, MAX_INGESTERS + 1])
def test_given_an_ingester_count_out_of_range_when_planning_then_it_is_refused(
    count: int,
) -> None:
    with pytest.raises(PlanError, match=f"between 1 and {MAX_INGESTERS}, not {count}"):
        UpOptions(ingesters=count)


def test_given_ports_past_65535_when_planning_then_it_names_the_setting_to_lower(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, ingester_health_port=65534)

    assert plan_for(settings, ingesters=2).names().count("ingester-2") == 1
    with pytest.raises(PlanError, match="65534-65536, past 65535: lower INGESTER_HEALTH_PORT"):
        plan_for(settings, ingesters=3)


def test_given_an_added_port_another_process_uses_when_planning_then_it_is_refused(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        data_dir=tmp_path, ingester_health_port=9000, worker_metrics_port=9002, flower_port=9001
    )

    with pytest.raises(
        PlanError, match="ingester-2's health port would be 9001, which is FLOWER_PORT"
    ):
        plan_for(settings, ingesters=2)
    assert "ingester-2" in plan_for(settings, ingesters=2, flower=False).names()
    with pytest.raises(PlanError, match="ingester-3's health port would be 9002, which is WORKER_"):
        plan_for(settings, ingesters=3, flower=False)
