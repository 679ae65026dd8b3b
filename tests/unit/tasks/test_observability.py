"""Secret scrubbing for Sentry (pure) and init_sentry's switch."""

from __future__ import annotations

from collections.abc import Callable

from models.secret_box import SecretBox
from runtime.observability import FILTERED, Scrubber, init_sentry, known_secrets
from settings import Settings


def test_credentials_in_urls_are_removed() -> None:
    s = Scrubber()
    assert s.text("connect postgresql+psycopg2://app:hunter2@db:5432/hw failed") == (
        "connect postgresql+psycopg2://[Filtered]@db:5432/hw failed"
    )
    assert s.text("redis://:pw@cache:6379/0") == "redis://[Filtered]@cache:6379/0"
    assert s.text("https://publickey@o1.ingest.sentry.io/42") == (
        "https://[Filtered]@o1.ingest.sentry.io/42"
    )
    assert s.text("https://api.hyperliquid.xyz/info") == "https://api.hyperliquid.xyz/info"


def test_webhook_urls_whose_path_is_the_secret_are_cut() -> None:
    s = Scrubber()
    assert s.text("POST https://hooks.slack.com/services/T1/B2/abcDEF -> 404") == (
        "POST https://hooks.slack.com/services/[Filtered] -> 404"
    )
    assert s.text("https://discord.com/api/webhooks/123456/tok-EN_x?wait=true") == (
        "https://discord.com/api/webhooks/123456/[Filtered]?wait=true"
    )
    assert s.text("https://api.telegram.org/bot123456:AAE-secret_tok/sendMessage") == (
        "https://api.telegram.org/bot[Filtered]/sendMessage"
    )


def test_secret_like_key_values_and_authorization_values_are_cut() -> None:
    s = Scrubber()
    assert s.text("signing_secret=whsec_123 retry=3") == "signing_secret=[Filtered] retry=3"
    assert s.text("GET /hook?token=abc123&x=1") == "GET /hook?token=[Filtered]&x=1"
    assert s.text('{"api_key": "k-123"}') == '{"api_key": "[Filtered]"}'
    assert s.text("Authorization: Bearer eyJhbGciOi.x.y") == "Authorization: Bearer [Filtered]"
    assert s.text("authentication failed for user bob") == "authentication failed for user bob"


def test_known_secret_values_are_cut_wherever_they_appear() -> None:
    s = Scrubber(["flowerpass123", "abc"])  # too short to redact safely: ignored
    assert s.text("operator flowerpass123 said abc") == "operator [Filtered] said abc"


def test_events_lose_sensitive_keys_task_arguments_and_request_bodies() -> None:
    # Given an event as the Celery integration builds it, with secrets in several places
    event = {
        "exception": {"values": [{"type": "RuntimeError", "value": "secret=abc12345"}]},
        "extra": {"celery-job": {"task_name": "t", "args": ["0xwallet"], "kwargs": {"a": 1}}},
        "request": {"headers": {"Authorization": "Basic b3BzOnB3", "Accept": "*/*"}, "data": "x"},
        "contexts": {"channel": {"webhook_secret": "whsec", "url": "https://u:p@h/x"}},
        "breadcrumbs": {"values": [{"message": "token: tk-1", "data": {"password": "p"}}]},
    }

    # When scrubbed
    out = Scrubber().event(event)

    # Then nothing secret is left, and the structure Sentry needs is intact
    assert out["exception"]["values"][0] == {"type": "RuntimeError", "value": "secret=[Filtered]"}
    assert out["extra"]["celery-job"] == {"task_name": "t", "args": FILTERED, "kwargs": FILTERED}
    assert out["request"]["headers"] == {"Authorization": FILTERED, "Accept": "*/*"}
    assert out["request"]["data"] == FILTERED
    assert out["contexts"]["channel"] == {
        "webhook_secret": FILTERED,
        "url": "https://[Filtered]@h/x",
    }
    assert out["breadcrumbs"]["values"][0] == {
        "message": "token: [Filtered]",
        "data": {"password": FILTERED},
    }


KEY_A, KEY_B = SecretBox.new_key(), SecretBox.new_key()


def test_known_secrets_come_from_the_settings(settings_for: Callable[..., Settings]) -> None:
    settings = settings_for(
        sentry_dsn="https://pubkey123@sentry.example/7",
        flower_basic_auth="ops:flowerpass123,viewer:otherpass9",
        database_url="postgresql+psycopg2://app:p%40ss-word@db/hw",
        redis_url="redis://:redispass1@cache:6379/0",
        broker_url="redis://cache:6379/1?password=broker%2Bpass2",
        channel_secret_keys=f"{KEY_A}, {KEY_B}",
    )
    secrets = known_secrets(settings)
    for value in ("https://pubkey123@sentry.example/7", "pubkey123", "flowerpass123",
                  "otherpass9", "p@ss-word", "p%40ss-word", "redispass1", "broker%2Bpass2",
                  "broker+pass2", KEY_A, KEY_B):  # fmt: skip
        assert value in secrets


def test_sentry_stays_off_without_a_dsn(settings_for: Callable[..., Settings]) -> None:
    assert init_sentry(settings_for(), "worker") is False
