"""Webhook signing: a receiver can verify origin, integrity and freshness."""

from __future__ import annotations

import hashlib
import hmac
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.notify.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    build_headers,
    idempotency_key,
    sign,
    verify,
)

SECRET = "whsec_test"
BODY = b'{"alert_id":1,"message":"BTC mid price 100 is at or above 99 [price_above]"}'
NOW = 1_787_000_000


def test_given_a_body_when_signed_then_it_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, NOW, BODY) == f"v1={expected}"
    assert sign(SECRET.encode(), NOW, BODY.decode()) == f"v1={expected}"


def test_given_headers_when_built_then_timestamp_signature_and_key_are_present() -> None:
    key = idempotency_key(42)

    headers = build_headers(SECRET, BODY, key, NOW)

    assert headers[TIMESTAMP_HEADER] == str(NOW)
    assert headers[SIGNATURE_HEADER] == sign(SECRET, NOW, BODY)
    assert headers[IDEMPOTENCY_HEADER] == key
    assert headers["Content-Type"] == "application/json"


def test_given_retries_of_one_notification_when_keyed_then_the_key_never_changes() -> None:
    first = build_headers(SECRET, BODY, idempotency_key(42), NOW)
    retry = build_headers(SECRET, BODY, idempotency_key(42), NOW + 300)

    assert first[IDEMPOTENCY_HEADER] == retry[IDEMPOTENCY_HEADER]
    assert first[SIGNATURE_HEADER] != retry[SIGNATURE_HEADER]
    assert idempotency_key(43) != idempotency_key(42)
    assert uuid.UUID(idempotency_key(42)).version == 5


def test_given_a_signed_request_when_verified_within_tolerance_then_true() -> None:
    header = sign(SECRET, NOW, BODY)

    assert verify(SECRET, str(NOW), BODY, header, now_s=NOW + 299)
    assert verify(SECRET, NOW, BODY, header, now_s=NOW - 300)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now"),
    [
        ("other-secret", str(NOW), BODY, NOW),
        (SECRET, str(NOW + 1), BODY, NOW),  # timestamp swapped after signing
        (SECRET, str(NOW), BODY + b" ", NOW),  # body altered
        (SECRET, str(NOW), BODY, NOW + 301),  # replayed too late
        (SECRET, "not-a-number", BODY, NOW),
        (SECRET, "-5", BODY, NOW),
        (SECRET, "١٧٨٧", BODY, NOW),  # non-ASCII digits
    ],
)
def test_given_a_tampered_or_old_request_when_verified_then_false(
    secret: str, timestamp: str, body: bytes, now: int
) -> None:
    header = sign(SECRET, NOW, BODY)

    assert verify(secret, timestamp, body, header, now_s=now) is False


@pytest.mark.parametrize(
    "header",
    ["", "v1=", "v0=abc", "nonsense", "v1=ZZ", "v1=é", "sha256=" + "0" * 64],
)
def test_given_a_malformed_signature_header_when_verified_then_false(header: str) -> None:
    assert verify(SECRET, NOW, BODY, header, now_s=NOW) is False


def test_given_a_rotating_secret_when_two_signatures_are_sent_then_either_verifies() -> None:
    header = f"{sign('old-secret', NOW, BODY)}, {sign(SECRET, NOW, BODY)}"

    assert verify(SECRET, NOW, BODY, header, now_s=NOW)
    assert verify("old-secret", NOW, BODY, header, now_s=NOW)
    assert not verify("third", NOW, BODY, header, now_s=NOW)


def test_given_a_previous_secret_when_headers_are_built_then_both_sign_new_first() -> None:
    headers = build_headers(SECRET, BODY, idempotency_key(1), NOW, also=("old-secret",))

    assert headers[SIGNATURE_HEADER] == f"{sign(SECRET, NOW, BODY)},{sign('old-secret', NOW, BODY)}"
    assert verify("old-secret", NOW, BODY, headers[SIGNATURE_HEADER], now_s=NOW)
    assert verify(SECRET, NOW, BODY, headers[SIGNATURE_HEADER], now_s=NOW)
    # an empty or repeated previous secret adds nothing
    same = build_headers(SECRET, BODY, idempotency_key(1), NOW, also=("", SECRET))
    assert same[SIGNATURE_HEADER] == sign(SECRET, NOW, BODY)


@pytest.mark.parametrize("timestamp", ["9" * 5000, "1" * 21, "\u0661\u0662\u0663"])
def test_given_an_absurd_timestamp_header_when_verified_then_false_not_an_error(
    timestamp: str,
) -> None:
    assert verify(SECRET, timestamp, BODY, sign(SECRET, NOW, BODY), now_s=NOW) is False


def test_given_an_empty_secret_when_signing_then_refused() -> None:
    with pytest.raises(ValueError):
        sign("", NOW, BODY)


@given(secret=st.text(min_size=1), body=st.binary(), timestamp=st.integers(0, 2**40))
def test_property_what_is_signed_verifies(secret: str, body: bytes, timestamp: int) -> None:
    header = build_headers(secret, body, idempotency_key(1), timestamp)[SIGNATURE_HEADER]

    assert verify(secret, str(timestamp), body, header, now_s=timestamp)
