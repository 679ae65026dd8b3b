"""Pure parts of what evaluation and delivery produce: the notification payload, the
firing's recorded time, the canonical webhook body, secret-free descriptions and logs,
and the CLI's time and duration inputs."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from domain.alerts.definition import parse_rule
from domain.alerts.firing import Firing, idempotency_key, payload
from domain.alerts.judgement import evaluate
from domain.alerts.market_state import MarketState
from domain.notify.channels.base import Attempt, Outgoing, RedactUrlPaths
from runtime.clock import ManualClock
from tests.unit.alerts.builders import ctx, mid
from workers.commands.alerts import parse_duration, parse_when
from workers.context import UsageError

T0 = 1_787_000_000_000


def fired(kind: str, **fields: object) -> Firing:
    rule = parse_rule({"id": 7, "user_id": 3, "coin": "BTC", "kind": kind, **fields})
    state = MarketState(max_age_ms=60_000)
    state.apply(mid("BTC", T0, "101"))
    state.apply(ctx("BTC", T0, mark="101", funding="0.0002"))
    verdict = evaluate(rule, state, T0)
    return Firing(rule, verdict, channel_id=1, event_time=T0)


def test_payload_states_the_measurement_exactly_with_funding_annualised() -> None:
    # Given a funding alert that fired at 0.0002 an hour
    body = payload(fired("funding_above", threshold="0.0001"), fired_at=T0 + 40)

    # Then numbers are exact strings, annualised for humans beside the hourly rate
    assert body["value"] == "0.0002" and body["threshold"] == "0.0001"
    assert Decimal(body["value_annualised"]) == Decimal("1.752")
    assert body["event_time"] == T0 and body["fired_at"] == T0 + 40
    assert "a year" in body["message"]


def test_firing_records_the_data_time_and_a_key_unique_per_cycle() -> None:
    firing = fired("price_above", threshold="100")
    assert firing.fired_at(T0 + 999) == T0
    assert Firing(firing.rule, firing.verdict, 1, None).fired_at(T0 + 999) == T0 + 999
    assert idempotency_key(7, T0) == f"alert:7:fired:{T0}"


def test_webhook_body_is_canonical_and_the_same_every_attempt() -> None:
    out = Outgoing(5, "key-5", 3, "http://x/", "s", {"b": "2", "a": "1", "message": "hi"})
    assert out.body() == out.body()
    assert (
        out.body()
        == b'{"a":"1","b":"2","idempotency_key":"key-5","message":"hi","notification_id":5}'
    )
    assert out.text == "hi"


def test_attempt_description_masks_the_secret_it_was_told_to_hide() -> None:
    attempt = Attempt(500, detail="echo /bot123:abc/sendMessage", hide="123:abc")
    assert attempt.description == "HTTP 500: echo /bot***/sendMessage"
    assert "hide" not in repr(Attempt(ConnectionError("refused"), hide="123:abc"))


def test_httpx_request_logs_keep_only_scheme_and_host() -> None:
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"',
        ("POST", "https://hooks.slack.com/services/T0/B0/secret", "HTTP/1.1 200 OK"), None,
    )  # fmt: skip
    assert RedactUrlPaths().filter(record)
    assert record.getMessage() == 'HTTP Request: POST https://hooks.slack.com/*** "HTTP/1.1 200 OK"'


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("4h", 14_400), ("1d", 86_400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text, "--window") == seconds


def test_times_are_iso_epoch_ms_or_relative() -> None:
    assert parse_when("2026-12-01T12:00:00Z", "--expires") == 1_796_126_400_000
    assert parse_when("1796126400000", "--expires") == 1_796_126_400_000
    assert parse_when("+2h", "--expires", ManualClock(wall_ms=1_000_000)) == (1_000 + 7_200) * 1000
    with pytest.raises(UsageError, match="--expires must be ISO 8601"):
        parse_when("tomorrow", "--expires")
    with pytest.raises(UsageError, match="--cooldown must be a duration"):
        parse_duration("1w", "--cooldown")


def test_payload_is_json_serialisable_for_every_kind() -> None:
    cases: list[tuple[str, dict[str, object]]] = [
        ("price_above", {"threshold": "100", "price_source": "mark"}),
        ("price_move_pct", {"threshold": "1", "window_s": 60}),
        ("stale_data", {"threshold": "1", "stream": "mids"}),
    ]
    for kind, fields in cases:
        json.dumps(payload(fired(kind, **fields), fired_at=T0))
