"""docker-compose.yml: parsed, and the keys that decide whether shutdown and delivery work.

Docker is not available where the tests run, so the file is checked as data: the services
exist and depend on each other as intended, grace periods exceed the worker's soft
shutdown, Redis cannot evict or lose the broker's data, and the health checks call things
that exist.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from celeryconfig import QUEUE_NAMES
from tests.unit.deploy.conftest import (
    ENTRYPOINT,
    PROCESS_VARIABLES,
    ROOT,
    settings_variables,
    soft_shutdown_default_s,
)

APP_SERVICES = ("ingester", "worker", "beat", "flower", "api")
# Services only a profile starts that run hyperwatch with the app services' contract.
PROFILE_APP_SERVICES = ("ingester-standby",)


def seconds(duration: str) -> float:
    """Compose durations: 60s, 1m30s, 1h."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and any(parts.groups()), f"not a duration: {duration!r}"
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + s


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose["services"]
    assert name in services, f"no service {name!r}"
    svc = services[name]
    assert isinstance(svc, dict)
    return svc


def entrypoint_roles() -> set[str]:
    return set(re.findall(r"^\s+([a-z]+)\)\s*$", ENTRYPOINT.read_text(), re.M))


def test_given_compose_when_parsed_then_every_part_of_the_system_is_a_service(
    compose: dict[str, Any],
) -> None:
    assert set(compose["services"]) >= {
        "redis", "postgres", "migrate", "ingester", "worker", "beat", "flower", "simulator",
    }  # fmt: skip


def test_given_redis_when_configured_then_it_keeps_the_broker_data_and_never_evicts(
    compose: dict[str, Any],
) -> None:
    command = [str(part) for part in service(compose, "redis")["command"]]

    flags = dict(zip(command[1::2], command[2::2], strict=True))
    assert command[0] == "redis-server"
    assert flags["--appendonly"] == "yes"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert any(v.endswith(":/data") for v in service(compose, "redis")["volumes"])


def test_given_app_services_when_they_start_then_migration_completed_and_redis_is_healthy(
    compose: dict[str, Any],
) -> None:
    migrate = service(compose, "migrate")
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in (*APP_SERVICES, *PROFILE_APP_SERVICES):
        depends = service(compose, name)["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name


def test_given_app_services_when_stopped_then_their_grace_period_outlasts_the_soft_shutdown(
    compose: dict[str, Any],
) -> None:
    for name in (*APP_SERVICES, *PROFILE_APP_SERVICES, "simulator"):
        grace = seconds(service(compose, name)["stop_grace_period"])
        assert grace > soft_shutdown_default_s(), name
        assert grace == 60, name
    timeout = float(service(compose, "worker")["environment"]["WORKER_SOFT_SHUTDOWN_TIMEOUT_S"])
    assert timeout < seconds(service(compose, "worker")["stop_grace_period"])


def test_given_the_worker_when_configured_then_sigterm_is_remapped_and_liveness_is_the_heartbeat(
    compose: dict[str, Any],
) -> None:
    worker = service(compose, "worker")

    assert worker["environment"]["REMAP_SIGTERM"] == "SIGQUIT"
    assert worker["command"] == ["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "hyperwatch", "health", "worker"]


def test_given_beat_when_checked_then_liveness_is_its_heartbeat_file(
    compose: dict[str, Any],
) -> None:
    assert service(compose, "beat")["healthcheck"]["test"] == [
        "CMD",
        "hyperwatch",
        "health",
        "beat",
    ]


def test_given_the_health_checks_when_run_then_the_commands_they_call_exist() -> None:
    from workers.commands.health import health

    assert {"worker", "beat"} <= set(health.commands)


def test_given_the_ingester_when_checked_then_it_probes_healthz_on_its_health_port(
    compose: dict[str, Any],
) -> None:
    ingester = service(compose, "ingester")

    assert ingester["environment"]["INGESTER_HEALTH_PORT"] == "8001"
    assert ingester["environment"]["INGESTER_HEALTH_HOST"] == "0.0.0.0"
    probe = " ".join(ingester["healthcheck"]["test"])
    assert "http://127.0.0.1:8001/healthz" in probe


def test_given_the_ha_profile_when_up_then_a_standby_ingester_follows_the_same_feed(
    compose: dict[str, Any],
) -> None:
    ingester = service(compose, "ingester")
    standby = service(compose, "ingester-standby")

    # Only on request: `docker compose up` without --profile ha runs what it ran before.
    assert standby["profiles"] == ["ha"]
    assert "profiles" not in ingester
    # The same process of the same feed: image, command, dependencies, stop budget, and
    # the environment (INGESTER_NAME included, so they share the lease) but the health port.
    for key in ("image", "command", "depends_on", "stop_grace_period", "restart"):
        assert standby[key] == ingester[key], key
    assert standby["environment"]["INGESTER_NAME"] == ingester["environment"]["INGESTER_NAME"]
    assert {**standby["environment"], "INGESTER_HEALTH_PORT": "8001"} == ingester["environment"]
    # Its own health port, exposed and probed.
    port = standby["environment"]["INGESTER_HEALTH_PORT"]
    assert port == "8002"
    assert standby["expose"] == [port]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(standby["healthcheck"]["test"])
    assert {k: v for k, v in standby["healthcheck"].items() if k != "test"} == {
        k: v for k, v in ingester["healthcheck"].items() if k != "test"
    }


def test_given_no_profile_when_up_then_the_default_services_are_unchanged(
    compose: dict[str, Any],
) -> None:
    default = {name for name, svc in compose["services"].items() if "profiles" not in svc}

    assert default == {
        "redis",
        "postgres",
        "migrate",
        "ingester",
        "worker",
        "beat",
        "flower",
        "api",
    }


def test_given_flower_when_configured_then_basic_auth_is_required_from_the_environment(
    compose: dict[str, Any],
) -> None:
    flower = service(compose, "flower")

    # ${VAR:?message} makes `docker compose up` refuse to start without it.
    assert re.fullmatch(
        r"\$\{FLOWER_BASIC_AUTH:\?[^}]+\}", flower["environment"]["FLOWER_BASIC_AUTH"]
    )
    assert flower["environment"]["FLOWER_ADDRESS"] == "0.0.0.0"
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert "/healthcheck" in " ".join(flower["healthcheck"]["test"])


def test_given_the_simulator_when_not_asked_for_then_it_does_not_start(
    compose: dict[str, Any],
) -> None:
    assert service(compose, "simulator")["profiles"] == ["simulator"]


def test_given_every_hyperwatch_service_when_started_then_its_role_is_one_the_entrypoint_execs(
    compose: dict[str, Any],
) -> None:
    roles = entrypoint_roles()
    for name in ("migrate", *APP_SERVICES, *PROFILE_APP_SERVICES, "simulator"):
        assert service(compose, name)["command"][0] in roles, name
        assert service(compose, name)["image"].startswith("hyperwatch:"), name


@pytest.mark.parametrize("name", ["migrate", *APP_SERVICES, *PROFILE_APP_SERVICES])
def test_given_service_environment_when_read_then_every_variable_is_a_known_setting(
    compose: dict[str, Any], name: str
) -> None:
    # A misspelt variable would be ignored silently (Settings ignores unknown names).
    known = settings_variables() | PROCESS_VARIABLES
    unknown = set(service(compose, name)["environment"]) - known
    assert not unknown, f"{name}: {sorted(unknown)}"


def test_given_the_worker_role_when_exec_d_then_it_consumes_every_queue() -> None:
    worker_arm = ENTRYPOINT.read_text().split("  worker)", 1)[1].split(";;", 1)[0]

    assert ",".join(QUEUE_NAMES) in worker_arm


def test_given_the_simulator_recipe_when_followed_then_its_wallets_are_tracked() -> None:
    from workers.simulator.config import SimulatorConfig

    wallets = ",".join(SimulatorConfig(users=2).all_users)
    for path in (ROOT / "docker-compose.yml", ROOT / "docs" / "OPERATIONS.md"):
        assert f"TRACKED_WALLETS={wallets}" in path.read_text(), path.name


def test_given_the_api_when_configured_then_it_probes_healthz_and_publishes_on_loopback(
    compose: dict[str, Any],
) -> None:
    api = compose["services"]["api"]

    assert api["command"] == ["api"]
    assert api["ports"] == ["127.0.0.1:8080:8080"]
    assert "8080/healthz" in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["API_PORT"] == "8080"
