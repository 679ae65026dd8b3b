"""The block `hyperwatch up` prints once everything runs."""

from __future__ import annotations

from pathlib import Path

from settings import load_settings
from workers.supervisor.plan import UpOptions
from workers.supervisor.summary import summary_lines


def test_given_the_defaults_when_summarised_then_every_address_and_how_to_stop(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path / "var")

    lines = summary_lines(settings, UpOptions(feed="sim", sim_port=4321))
    text = "\n".join(lines)

    assert lines[0].startswith("hyperwatch is up, following the built-in simulator")
    assert "ws://127.0.0.1:4321/ws" in lines[0]
    assert "Flower    http://127.0.0.1:5555" in text
    assert "FLOWER_BASIC_AUTH is not set" in text
    assert "worker http://127.0.0.1:9808/metrics" in text
    assert "ingester http://127.0.0.1:8001/metrics" in text
    assert "http://127.0.0.1:8001/healthz" in text
    assert f"database  sqlite:///{tmp_path}/var/hyperwatch.db" in text
    assert "Redis     redis://127.0.0.1:6379/0" in text
    assert lines[-1].startswith("Ctrl-C to stop")


def test_given_secrets_when_summarised_then_none_is_printed_and_flower_login_is_named(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        flower_basic_auth="ops:fl0wer-pass",
        database_url="postgresql+psycopg2://app:db-pass@db:5432/hw",
        redis_url="redis://:redis-pass@cache:6379/0",
        broker_url="redis://:broker-pass@broker:6379/1",
    )

    text = "\n".join(summary_lines(settings, UpOptions()))

    for secret in ("fl0wer-pass", "db-pass", "redis-pass", "broker-pass"):
        assert secret not in text
    assert "FLOWER_BASIC_AUTH" in text
    assert "postgresql+psycopg2://app:***@db:5432/hw" in text
    assert "redis://:***@broker:6379/1 (broker)" in text
    assert "Hyperliquid (wss://api.hyperliquid.xyz/ws)" in text


def test_given_servers_off_when_summarised_then_it_says_so(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, worker_metrics_port=0, ingester_health_port=0)

    text = "\n".join(summary_lines(settings, UpOptions(flower=False, api=False)))

    assert "Flower    off (--no-flower)" in text
    assert "API       off (--no-api)" in text
    assert "metrics   off" in text
    assert "health    `hyperwatch health`" in text


def test_given_two_ingesters_when_summarised_then_each_health_port_is_named(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, ingester_health_port=8001)

    text = "\n".join(summary_lines(settings, UpOptions(ingesters=2)))

    assert "ingester http://127.0.0.1:8001/metrics" in text
    assert "ingester-2 http://127.0.0.1:8002/metrics" in text
    assert "ingester http://127.0.0.1:8001/healthz and /readyz" in text
    assert "ingester-2 http://127.0.0.1:8002/healthz and /readyz" in text


def test_given_the_flower_opt_out_when_summarised_then_the_missing_login_is_loud(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        data_dir=tmp_path, flower_address="0.0.0.0", flower_allow_unauthenticated=True
    )

    text = "\n".join(summary_lines(settings, UpOptions()))

    assert "NO LOGIN beyond this machine: FLOWER_ALLOW_UNAUTHENTICATED is set" in text


def test_given_the_api_when_summarised_then_its_url_docs_and_metrics_are_named(
    tmp_path: Path,
) -> None:
    settings = load_settings(data_dir=tmp_path, api_port=18123)

    text = "\n".join(summary_lines(settings, UpOptions()))

    assert "API       http://127.0.0.1:18123/v1  (OpenAPI http://127.0.0.1:18123/docs" in text
    assert "no admin routes: API_ADMIN_KEY is not set" in text
    assert "api http://127.0.0.1:18123/metrics" in text
    off = "\n".join(summary_lines(load_settings(data_dir=tmp_path, api_port=0), UpOptions()))
    assert "API       off (API_PORT=0)" in off
