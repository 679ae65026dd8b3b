"""`hyperwatch up`'s options as the command parses them (only --dry-run: nothing starts)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from workers.supervisor import up
from workers.supervisor.plan import MAX_INGESTERS


def run_up(*args: str, **env: str) -> Result:
    return CliRunner().invoke(up, list(args), env=env)


def dry_run(*args: str, **env: str) -> dict[str, Any]:
    result = run_up("--dry-run", *args, **env)
    assert result.exit_code == 0, result.output
    plan: dict[str, Any] = json.loads(result.output)
    return plan


def test_given_no_ingesters_option_when_dry_run_then_one_ingester_as_before() -> None:
    plan = dry_run("--no-flower", "--no-api")

    assert [s["name"] for s in plan["start"]] == ["migrate", "worker", "beat", "ingester"]
    assert plan["stop_order"] == ["ingester", "beat", "worker"]


def test_given_two_ingesters_when_dry_run_then_both_start_and_stop_before_the_rest() -> None:
    plan = dry_run("--feed", "sim", "--ingesters", "2")

    names = [s["name"] for s in plan["start"]]
    assert names == [
        "migrate", "simulator", "worker", "beat", "ingester", "ingester-2", "api", "flower",
    ]  # fmt: skip
    assert plan["stop_order"][:4] == ["api", "ingester-2", "ingester", "simulator"]
    argvs = {tuple(s["argv"][1:]) for s in plan["start"] if s["name"].startswith("ingester")}
    assert argvs == {("-m", "workers.cli", "ingest")}


@pytest.mark.parametrize("count", ["0", str(MAX_INGESTERS + 1)])
def test_given_an_ingester_count_out_of_range_when_up_then_exit_2_naming_the_option(
    count: str,
) -> None:
    result = run_up("--ingesters", count, "--dry-run")

    assert result.exit_code == 2
    assert "Invalid value for '--ingesters'" in result.output
    assert f"1<=x<={MAX_INGESTERS}" in result.output


def test_given_health_ports_past_65535_when_up_then_exit_2_naming_the_option_and_setting() -> None:
    result = run_up("--ingesters", "3", "--dry-run", INGESTER_HEALTH_PORT="65534")

    assert result.exit_code == 2
    assert "Invalid value for '--ingesters'" in result.output
    assert "INGESTER_HEALTH_PORT" in result.output
