"""deploy/systemd: the units stop their processes the way the shutdown contract needs."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from celeryconfig import QUEUE_NAMES
from tests.unit.deploy.conftest import SYSTEMD, soft_shutdown_default_s

SERVICES = ("ingester", "worker", "beat", "flower", "api")
# Every long-running unit: the services plus the template for several ingesters on one host
# (hyperwatch-ingester@.service, instances enabled one by one).
UNITS = (*SERVICES, "ingester@")
SETTINGS_FILE = "/etc/hyperwatch/hyperwatch.env"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """systemd's INI dialect: repeated keys accumulate, `#` lines are comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not key=value: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(name: str) -> dict[str, list[str]]:
    return parse_unit(SYSTEMD / f"hyperwatch-{name}.service")["Service"]


def environment(svc: dict[str, list[str]]) -> dict[str, str]:
    pairs = [p for line in svc.get("Environment", []) for p in shlex.split(line)]
    return dict(p.split("=", 1) for p in pairs)


@pytest.mark.parametrize("name", UNITS)
def test_given_a_unit_when_stopped_then_sigterm_goes_to_the_main_process_with_time_to_drain(
    name: str,
) -> None:
    svc = service(name)

    assert svc["KillMode"] == ["mixed"]
    assert svc["KillSignal"] == ["SIGTERM"]
    timeout = float(svc["TimeoutStopSec"][0])
    assert timeout > soft_shutdown_default_s()
    assert timeout == 60


@pytest.mark.parametrize("name", UNITS)
def test_given_a_unit_when_started_then_sigterm_is_remapped_and_settings_come_from_a_file(
    name: str,
) -> None:
    svc = service(name)

    assert environment(svc)["REMAP_SIGTERM"] == "SIGQUIT"
    # The shared settings first; the template adds its instance's file after them.
    assert svc["EnvironmentFile"][0] == SETTINGS_FILE
    assert environment(svc)["DATA_DIR"] == "/var/lib/hyperwatch"
    assert svc["StateDirectory"] == ["hyperwatch"]


@pytest.mark.parametrize("name", UNITS)
def test_given_a_crash_when_supervised_by_systemd_then_it_restarts_except_on_a_bad_setting(
    name: str,
) -> None:
    svc = service(name)

    assert svc["Restart"] == ["on-failure"]
    assert svc["RestartPreventExitStatus"] == ["2"]
    assert svc["User"] == ["hyperwatch"]


@pytest.mark.parametrize("name", UNITS)
def test_given_a_unit_when_started_then_it_runs_the_process_itself_after_the_migration(
    name: str,
) -> None:
    unit = parse_unit(SYSTEMD / f"hyperwatch-{name}.service")
    argv = shlex.split(unit["Service"]["ExecStart"][0])

    # Run directly (no shell wrapper), so the process is the unit's main PID.
    assert argv[0].startswith("/opt/hyperwatch/.venv/bin/")
    assert Path(argv[0]).name in ("celery", "hyperwatch")
    assert "hyperwatch-migrate.service" in unit["Unit"]["Requires"][0].split()
    assert "hyperwatch-migrate.service" in unit["Unit"]["After"][0].split()
    assert unit["Install"]["WantedBy"] == ["hyperwatch.target"]
    assert unit["Unit"]["PartOf"] == ["hyperwatch.target"]


def test_given_the_ingester_template_when_instantiated_then_only_its_env_file_differs() -> None:
    single = parse_unit(SYSTEMD / "hyperwatch-ingester.service")
    template = parse_unit(SYSTEMD / "hyperwatch-ingester@.service")

    # The instance's own file, optional, read after the shared one so it overrides it
    # (its health port): %i is any name, so nothing can be derived from it in the unit.
    assert template["Service"]["EnvironmentFile"] == [
        SETTINGS_FILE,
        "-/etc/hyperwatch/ingester-%i.env",
    ]
    assert "%i" in template["Unit"]["Description"][0]
    # Everything else — command, user, hardening, stop and restart semantics — as the
    # single ingester's unit.
    for section in ("Unit", "Service"):
        ignored = {"Description", "EnvironmentFile"}
        assert {k: v for k, v in template[section].items() if k not in ignored} == {
            k: v for k, v in single[section].items() if k not in ignored
        }, section
    assert template["Service"]["EnvironmentFile"][:1] == single["Service"]["EnvironmentFile"]
    assert template["Install"] == single["Install"]
    assert "INGESTER_HEALTH_PORT" not in environment(template["Service"])


def test_given_the_worker_unit_when_started_then_it_consumes_every_queue() -> None:
    svc = service("worker")
    argv = shlex.split(svc["ExecStart"][0])

    assert argv[1:4] == ["-A", "tasks", "worker"]
    assert environment(svc)["WORKER_QUEUES"].split(",") == list(QUEUE_NAMES)
    assert argv[argv.index("-Q") + 1] == "${WORKER_QUEUES}"
    # `%%` is systemd's escape: Celery receives celery@%h, the node `hyperwatch health
    # worker` looks for by default.
    assert argv[argv.index("-n") + 1] == "celery@%%h"


def test_given_the_migration_unit_when_run_then_it_is_a_one_shot_upgrade() -> None:
    svc = parse_unit(SYSTEMD / "hyperwatch-migrate.service")["Service"]

    assert svc["Type"] == ["oneshot"]
    assert svc["RemainAfterExit"] == ["yes"]
    assert shlex.split(svc["ExecStart"][0])[1:] == ["db", "upgrade"]


def test_given_the_target_when_started_then_it_wants_every_service() -> None:
    target = parse_unit(SYSTEMD / "hyperwatch.target")["Unit"]

    wanted = target["Wants"][0].split()
    assert sorted(wanted) == sorted(f"hyperwatch-{name}.service" for name in SERVICES)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_given_systemd_analyze_when_verifying_then_units_have_no_errors(tmp_path: Path) -> None:
    for unit in SYSTEMD.iterdir():
        shutil.copy(unit, tmp_path / unit.name)
    for unit in sorted(tmp_path.iterdir()):
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        # The executables live on the target host, not here; everything else is an error.
        problems = [
            line
            for line in (result.stdout + result.stderr).splitlines()
            if line.strip() and "is not executable" not in line
        ]
        assert not problems, f"{unit.name}: {problems}"
