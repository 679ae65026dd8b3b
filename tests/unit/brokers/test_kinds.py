"""The broker kind follows the URL; Sentinel URLs parse and validate in kombu's format. Pure."""

from __future__ import annotations

import pytest

import celeryconfig
from runtime.brokers import RedisBroker, SentinelBroker, for_settings, for_url, kind_of
from runtime.health import Failure, check_redis
from runtime.redis_clients import parse_sentinel_url
from settings import SettingsError, load_settings

SENTINEL = "sentinel://:s3cret@10.0.0.1:26379;sentinel://10.0.0.2:26380;sentinel://10.0.0.3/2"


@pytest.mark.parametrize(
    ("url", "kind", "cls"),
    [
        ("redis://127.0.0.1:6379/0", "redis", RedisBroker),
        ("rediss://h:6380/1", "redis", RedisBroker),
        ("unix:///run/redis.sock", "redis", RedisBroker),
        (SENTINEL, "sentinel", SentinelBroker),
    ],
)
def test_given_a_broker_url_then_its_scheme_picks_the_kind(url: str, kind: str, cls: type) -> None:
    broker = for_url(url, "mymaster")
    assert kind_of(url) == kind and type(broker) is cls and broker.kind == kind
    assert broker.confirms_end_to_end  # both Redis kinds pop before recording


def test_given_a_sentinel_url_then_nodes_db_and_password_are_read() -> None:
    target = parse_sentinel_url(SENTINEL)
    assert target.nodes == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379))
    assert (target.db, target.password) == (2, "s3cret")


@pytest.mark.parametrize("bad", ["sentinel://", "sentinel://h:1;redis://h:2", "sentinel://h/x"])
def test_given_a_malformed_sentinel_url_then_settings_name_the_variable(bad: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(broker_url=bad)
    assert str(err.value).startswith("invalid setting BROKER_URL: expected sentinel://")
    assert "\n" not in str(err.value)


def test_given_an_amqp_url_then_settings_refuse_it_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^invalid setting BROKER_URL: expected a redis://"):
        load_settings(broker_url="amqp://guest:guest@127.0.0.1:5672//")


def test_given_a_sentinel_broker_then_celery_and_kombu_get_its_master_name() -> None:
    settings = load_settings(broker_url=SENTINEL, broker_sentinel_master="hw-broker")
    options = celeryconfig.from_settings(settings)["broker_transport_options"]
    assert options["master_name"] == "hw-broker"
    assert options["visibility_timeout"] == settings.broker_visibility_timeout_s
    assert for_settings(load_settings(broker_url=SENTINEL)).transport_options()["master_name"] == (
        "mymaster"  # BROKER_SENTINEL_MASTER defaults to REDIS_SENTINEL_MASTER
    )


def test_given_a_plain_redis_broker_then_celery_options_are_unchanged() -> None:
    options = celeryconfig.from_settings(load_settings())["broker_transport_options"]
    assert "master_name" not in options and "sentinel_kwargs" not in options


def test_given_a_primary_behind_sentinel_then_the_redis_check_names_it() -> None:
    settings = load_settings()
    check = check_redis("redis", 0.001, settings, "10.0.0.7:6379")
    assert check.data["primary"] == "10.0.0.7:6379" and "primary 10.0.0.7:6379" in check.reason
    unknown = check_redis("broker", 0.001, settings, Failure("MasterNotFoundError: x"))
    assert unknown.data["primary"] == "unknown: MasterNotFoundError: x"
    assert "primary" not in check_redis("redis", 0.001, settings).data
