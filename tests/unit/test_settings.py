"""Settings: good values load; every kind of bad value is refused naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from settings import (
    PROJECT_DIR,
    SettingsError,
    default_data_dir,
    load_settings,
    redact_url,
    url_secrets,
)


def test_given_no_environment_when_loading_then_defaults_run_on_one_machine() -> None:
    s = load_settings()
    assert s.database_url.startswith("sqlite:///")
    assert s.effective_broker_url == s.redis_url
    assert s.all_coins
    assert s.tracked_wallets == []


def test_given_no_data_dir_when_loading_from_any_directory_then_sqlite_lives_in_the_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given neither DATA_DIR nor DATABASE_URL, and a working directory outside the checkout
    monkeypatch.delenv("DATA_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # When settings load
    s = load_settings()
    # Then the data dir is var/ beside settings.py, and SQLite is in it (absolute paths)
    assert s.data_dir == PROJECT_DIR / "var"
    assert s.database_url == f"sqlite:///{PROJECT_DIR / 'var' / 'hyperwatch.db'}"
    assert s.data_dir.is_absolute()


def test_given_a_data_dir_when_loading_then_the_default_database_follows_it(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path).database_url == f"sqlite:///{tmp_path}/hyperwatch.db"
    assert load_settings(data_dir=tmp_path, database_url="").database_url.startswith(
        f"sqlite:///{tmp_path}/"
    )
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/hw"
    assert load_settings(data_dir=tmp_path, database_url=url).database_url == url


def test_given_an_empty_data_dir_when_loading_then_the_default_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATA_DIR", "")
    assert load_settings().data_dir == default_data_dir()


def test_given_an_installed_copy_without_a_checkout_when_defaulting_then_xdg_data_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    assert default_data_dir(tmp_path / "site-packages") == tmp_path / "share" / "hyperwatch"
    assert default_data_dir(PROJECT_DIR) == PROJECT_DIR / "var"


def test_given_comma_lists_when_loading_then_they_are_parsed_and_normalised() -> None:
    wallet = "0x5B2E9C0D4A1F8E7B6C3D2A1908F7E6D5C4B3A291"
    s = load_settings(coins="BTC, ETH,kPEPE", tracked_wallets=f"{wallet},{wallet.lower()}")
    assert s.coins == ["BTC", "ETH", "kPEPE"]
    assert s.tracked_wallets == [wallet.lower()]


def test_given_a_shard_when_loading_then_it_is_normalised_and_parsed() -> None:
    assert load_settings().shard == (0, 1)
    s = load_settings(ingest_shard=" 3 / 8 ")
    assert s.ingest_shard == "3/8" and s.shard == (3, 8)
    assert load_settings(ingest_shard="63/64").shard == (63, 64)


def test_given_broker_url_when_loading_then_it_overrides_redis_url() -> None:
    s = load_settings(broker_url="redis://broker:6379/1")
    assert s.effective_broker_url == "redis://broker:6379/1"


@pytest.mark.parametrize(
    ("overrides", "variable", "fragment"),
    [
        ({"database_max_connections": "abc"}, "DATABASE_MAX_CONNECTIONS", "integer"),
        ({"database_max_connections": 0}, "DATABASE_MAX_CONNECTIONS", "greater than or equal to 1"),
        ({"database_url": "mysql://x/y"}, "DATABASE_URL", "postgresql:// or sqlite://"),
        ({"database_url": "not a url"}, "DATABASE_URL", "SQLAlchemy URL"),
        ({"redis_url": "http://x"}, "REDIS_URL", "redis://"),
        ({"hl_ws_url": "https://api.hyperliquid.xyz/ws"}, "HL_WS_URL", "ws://"),
        ({"coins": "BTC,bad coin"}, "COINS", "coin names"),
        ({"tracked_wallets": "0x123"}, "TRACKED_WALLETS", "40 hex"),
        ({"sentry_traces_sample_rate": 2}, "SENTRY_TRACES_SAMPLE_RATE", "less than or equal to 1"),
        ({"sentry_dsn": "nonsense"}, "SENTRY_DSN", "Sentry DSN"),
        ({"flower_basic_auth": "justauser"}, "FLOWER_BASIC_AUTH", "user:password"),
        ({"log_level": "chatty"}, "LOG_LEVEL", "DEBUG"),
        ({"reconnect_min_s": 5, "reconnect_max_s": 1}, "RECONNECT_MAX_S", "at least"),
        ({"ingest_shard": "2/2"}, "INGEST_SHARD", "0 <= i < N <= 64"),
        ({"ingest_shard": "0/0"}, "INGEST_SHARD", "got '0/0'"),
        ({"ingest_shard": "0/65"}, "INGEST_SHARD", "got '0/65'"),
        ({"ingest_shard": "-1/4"}, "INGEST_SHARD", "i/N"),
        ({"ingest_shard": "1"}, "INGEST_SHARD", "i/N"),
        ({"ingest_shard": "one/two"}, "INGEST_SHARD", "i/N"),
        (
            {"ingest_subscriptions_per_connection": 1},
            "INGEST_SUBSCRIPTIONS_PER_CONNECTION",
            "greater than or equal to 2",
        ),
        ({"ingest_meta_refresh_s": -1}, "INGEST_META_REFRESH_S", "greater than or equal to 0"),
        (
            {"position_poll_hot_s": 40},
            "POSITION_POLL_INTERVAL_S",
            "at least POSITION_POLL_HOT_S (40.0)",
        ),
        (
            {"position_poll_idle_s": 20},
            "POSITION_POLL_IDLE_S",
            "at least POSITION_POLL_INTERVAL_S (30.0)",
        ),
        ({"position_poll_hot_s": 0}, "POSITION_POLL_HOT_S", "greater than 0"),
    ],
)
def test_given_bad_value_when_loading_then_one_line_names_the_variable(
    overrides: dict[str, object], variable: str, fragment: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    message = str(info.value)
    assert info.value.variable == variable
    assert message.startswith(f"invalid setting {variable}:")
    assert fragment in message
    assert "\n" not in message


def test_given_secret_in_bad_url_when_refused_then_secret_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(database_url="mysql://user:hunter2@db/x")
    assert "hunter2" not in str(info.value)


def test_given_url_with_password_when_redacted_then_password_is_masked() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/hw") == "postgresql://app:***@db:5432/hw"
    s = load_settings(
        database_url="postgresql://app:s3cret@db:5432/hw", sentry_dsn="https://k@sentry.example/1"
    )
    shown = str(s.redacted())
    assert "s3cret" not in shown
    assert "https://k@" not in shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://cache:6379/0?password=s3cret", "redis://cache:6379/0?password=***"),
        ("redis://cache:6379/0?db=1&password=s3cret&x=1", "redis://cache:6379/0?db=1&password=***&x=1"),
        ("postgresql://app@db/hw?sslmode=require&PASSWORD=s3cret", "postgresql://app@db/hw?sslmode=require&PASSWORD=***"),
        ("postgresql://app@db/hw?sslpassword=s3cret", "postgresql://app@db/hw?sslpassword=***"),
        ("https://h/x?token=s3cret#frag", "https://h/x?token=***#frag"),
        # an unencoded "@" in the password: all of it is masked, not the part before the "@"
        ("redis://app:p@s3cret@cache:6379/0", "redis://app:***@cache:6379/0"),
        # no user-info, an "@" in the query: the port is not taken for a user name
        ("redis://cache:6379?password=a@s3cret", "redis://cache:6379?password=***"),
        ("unreachable: redis://:s3cret@h:1/0 and postgresql://u@h/d?password=s3cret (timeout)",
         "unreachable: redis://:***@h:1/0 and postgresql://u@h/d?password=*** (timeout)"),
        ("redis://cache:6379/0?db=1", "redis://cache:6379/0?db=1"),
    ],
)  # fmt: skip
def test_given_a_password_in_a_query_string_when_redacted_then_it_is_masked(
    url: str, shown: str
) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)


def test_given_query_string_passwords_when_shown_then_config_show_masks_them() -> None:
    # Given Redis and PostgreSQL URLs whose password is in the query string
    s = load_settings(
        database_url="postgresql://app@db:5432/hw?password=pg-s3cret",
        redis_url="redis://cache:6379/0?password=redis-s3cret",
        broker_url="redis://cache:6379/1?password=broker-s3cret",
    )

    # When the settings are shown (what `hyperwatch config show` prints)
    shown = str(s.redacted())

    # Then no password is there, and the rest of each URL is
    assert "s3cret" not in shown
    assert "redis://cache:6379/0?password=***" in shown
    assert "postgresql+psycopg2://app@db:5432/hw?password=***" in shown
    assert url_secrets(s.database_url) == ["pg-s3cret"]


def test_given_a_query_string_password_when_the_database_is_unreachable_then_the_error_masks_it() -> (
    None
):
    from click.testing import CliRunner

    from workers.cli import cli

    # Given a PostgreSQL URL with its password in the query string, and nothing listening
    env = {
        "DATABASE_URL": "postgresql+psycopg2://app@127.0.0.1:1/hw?password=pg-s3cret&connect_timeout=2"
    }

    # When a command needs the database
    result = CliRunner().invoke(cli, ["users", "list"], env=env)

    # Then exit 1 with one line naming the URL, its password masked
    assert result.exit_code == 1, result.output
    assert "postgresql+psycopg2://app@127.0.0.1:1/hw?password=***&connect_timeout=2" in (
        result.output
    )
    assert "pg-s3cret" not in result.output


def test_given_env_file_when_loading_then_values_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("INGEST_BATCH_SIZE=123\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().ingest_batch_size == 123


def test_given_tier_when_asking_quota_then_tier_settings_are_used() -> None:
    s = load_settings(tier_pro_max_alerts=7)
    assert s.tier_quota("pro").max_alerts == 7
    assert s.tier_quota("free").max_alerts == s.tier_free_max_alerts


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "foo://bar"}, "DATABASE_URL"),
        ({"DATABASE_MAX_CONNECTIONS": "ten"}, "DATABASE_MAX_CONNECTIONS"),
        ({"INGEST_SHARD": "4/4"}, "INGEST_SHARD"),
    ],
)
def test_given_bad_env_when_cli_starts_then_exit_2_and_one_line(
    env: dict[str, str], variable: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "config", "show"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert variable in lines[0]


def test_given_settings_object_when_generating_env_example_then_checked_in_file_matches() -> None:
    from workers.commands.config import env_example

    checked_in = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    assert checked_in == env_example(), "run: hyperwatch config env-example > .env.example"


def test_each_shard_is_a_feed_of_its_own() -> None:
    assert load_settings(ingester_name="main").feed == "main"
    assert load_settings(ingester_name="main", ingest_shard="2/4").feed == "main.shard2of4"


def test_a_postgresql_url_without_a_driver_gets_psycopg2_and_another_driver_is_refused() -> None:
    settings = load_settings(database_url="postgresql://hw:s3cret@db.example:5432/hw")
    assert settings.database_url == "postgresql+psycopg2://hw:s3cret@db.example:5432/hw"
    with pytest.raises(SettingsError) as refused:
        load_settings(database_url="postgresql+psycopg://hw@db.example/hw")
    assert "DATABASE_URL" in str(refused.value) and "psycopg2" in str(refused.value)
