"""The broker kind follows the URL; Sentinel URLs parse and validate in kombu's format. Pure."""

from __future__ import annotations

import pytest

import beat_schedule
import celeryconfig
from runtime.brokers import AmqpBroker, RedisBroker, SentinelBroker, for_settings, for_url, kind_of
from runtime.brokers.amqp import DEAD_LETTER_QUEUE
from runtime.health import Failure, check_redis
from runtime.keys import QUEUE_NAMES
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
        ("amqp://guest:guest@h:5672//", "amqp", AmqpBroker),
        ("pyamqp://h", "amqp", AmqpBroker),
    ],
)
def test_given_a_broker_url_then_its_scheme_picks_the_kind(url: str, kind: str, cls: type) -> None:
    broker = for_url(url, "mymaster")
    assert kind_of(url) == kind and type(broker) is cls and broker.kind == kind
    # the Redis kinds pop before recording; RabbitMQ keeps a delivery until it is acked
    assert broker.confirms_end_to_end == (kind != "amqp")


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


@pytest.mark.parametrize("bad", ["amqp://", "amqp://h:port", "amqp://x y"])
def test_given_a_malformed_amqp_url_then_settings_name_the_variable(bad: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(broker_url=bad)
    assert str(err.value) == (
        "invalid setting BROKER_URL: expected amqp://user:password@host:port/vhost"
    )


def test_given_an_amqp_url_for_the_cache_then_settings_refuse_it() -> None:
    with pytest.raises(SettingsError, match=r"^invalid setting REDIS_URL: expected a redis://"):
        load_settings(redis_url="amqp://guest:guest@127.0.0.1:5672//")


def test_given_rabbitmq_then_every_queue_is_a_quorum_queue_with_a_delivery_limit() -> None:
    settings = load_settings(
        broker_url="amqp://guest:guest@10.0.0.1:5672//", broker_delivery_limit=7
    )
    broker = for_settings(settings)
    assert isinstance(broker, AmqpBroker) and not broker.confirms_end_to_end
    config = celeryconfig.from_settings(settings)
    queues = {q.name: q for q in config["task_queues"]}
    assert set(queues) == set(QUEUE_NAMES)
    for queue in queues.values():
        assert queue.queue_arguments == {
            "x-queue-type": "quorum",
            "x-delivery-limit": 7,
            "x-dead-letter-exchange": DEAD_LETTER_QUEUE,
            "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
        }
        assert queue.exchange.type == "topic"  # native delayed delivery needs it
    assert config["worker_detect_quorum_queues"] is True
    assert config["broker_transport_options"] == {"confirm_publish": True}
    assert broker.publish_options() == {"confirm_timeout": broker.timeout_s}
    assert "dead-letters" in beat_schedule.build(settings)
    assert "dead-letters" not in beat_schedule.build(load_settings())


def test_given_a_sentinel_broker_then_celery_and_kombu_get_its_master_name() -> None:
    settings = load_settings(broker_url=SENTINEL, broker_sentinel_master="hw-broker")
    options = celeryconfig.from_settings(settings)["broker_transport_options"]
    assert options["master_name"] == "hw-broker"
    assert options["visibility_timeout"] == settings.broker_visibility_timeout_s
    assert for_settings(load_settings(broker_url=SENTINEL)).transport_options()["master_name"] == (
        "mymaster"  # BROKER_SENTINEL_MASTER defaults to REDIS_SENTINEL_MASTER
    )


def test_given_a_plain_redis_broker_then_celery_options_are_unchanged() -> None:
    config = celeryconfig.from_settings(load_settings())
    options = config["broker_transport_options"]
    assert "master_name" not in options and "sentinel_kwargs" not in options
    assert "task_queues" not in config  # celeryconfig's own (direct exchanges, no arguments)


def test_given_a_primary_behind_sentinel_then_the_redis_check_names_it() -> None:
    settings = load_settings()
    check = check_redis("redis", 0.001, settings, "10.0.0.7:6379")
    assert check.data["primary"] == "10.0.0.7:6379" and "primary 10.0.0.7:6379" in check.reason
    unknown = check_redis("broker", 0.001, settings, Failure("MasterNotFoundError: x"))
    assert unknown.data["primary"] == "unknown: MasterNotFoundError: x"
    assert "primary" not in check_redis("redis", 0.001, settings).data


def test_given_rabbitmq_then_the_app_raises_sub_second_countdowns_to_one_second() -> None:
    # Celery's native delayed delivery refuses a countdown under 1 s (the retry would be
    # rejected, requeued and loop to the delivery limit); on Redis nothing changes.
    from tasks.application import create_app

    amqp = create_app(load_settings(broker_url="amqp://guest:guest@10.0.0.1:5672//"))
    assert amqp.min_countdown_s == 1.0
    assert [amqp.countdown(s) for s in (0, 0.3, 1.0, 2.5)] == [0, 1.0, 1.0, 2.5]
    plain = create_app(load_settings())
    assert plain.min_countdown_s == 0.0 and plain.countdown(0.3) == 0.3
