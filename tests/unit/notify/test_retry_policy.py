"""Retry policy: what retries, what is permanent, and how long to wait."""

from __future__ import annotations

import random
import socket
import ssl

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.notify.retry_policy import (
    Decision,
    classify,
    decide,
    delivery_policy,
    parse_retry_after,
    telegram_retry_after,
)
from runtime.retry import RetryPolicy
from settings import Settings

NOW = 1_445_412_480.0  # Wed, 21 Oct 2015 07:28:00 GMT


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "ok"),
        (204, "ok"),
        (299, "ok"),
        (408, "retry"),
        (425, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (599, "retry"),
        (400, "permanent"),
        (401, "permanent"),
        (403, "permanent"),
        (404, "permanent"),
        (410, "permanent"),
        (422, "permanent"),
        (301, "permanent"),  # redirects are not followed
        (302, "permanent"),
        (100, "permanent"),
        (600, "permanent"),
    ],
)
def test_given_a_status_code_when_classified_then_2xx_ok_transient_retry_rest_permanent(
    status: int, expected: str
) -> None:
    assert classify(status) == expected


def _wrapped_cert_failure() -> httpx.ConnectError:
    try:
        try:
            raise ssl.SSLCertVerificationError("certificate verify failed")
        except ssl.SSLError as exc:
            raise httpx.ConnectError("TLS handshake failed") from exc
    except httpx.ConnectError as outer:
        return outer


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError("read timed out"), "retry"),
        (ConnectionRefusedError(), "retry"),
        (ConnectionResetError(), "retry"),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), "retry"),
        (httpx.ConnectTimeout("connect timeout"), "retry"),
        (httpx.ReadTimeout("read timeout"), "retry"),
        (httpx.ConnectError("connection refused"), "retry"),
        (httpx.RemoteProtocolError("peer closed connection"), "retry"),
        (_wrapped_cert_failure(), "permanent"),
        (ssl.SSLCertVerificationError("bad cert"), "permanent"),
        (ValueError("bug in our payload"), "permanent"),
        (httpx.UnsupportedProtocol("ftp"), "permanent"),
    ],
)
def test_given_an_exception_when_classified_then_network_trouble_retries(
    exc: BaseException, expected: str
) -> None:
    assert classify(exc) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:30:00 GMT", 120.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),  # a date in the past: go now
        (None, None),
        ("", None),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:30:00 -0000", None),  # no real zone
    ],
)
def test_given_retry_after_when_parsed_then_seconds_or_date_give_a_wait(
    header: str | None, expected: float | None
) -> None:
    assert parse_retry_after(header, NOW) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"ok":false,"error_code":429,"parameters":{"retry_after":35}}', 35.0),
        (b'{"ok":false,"parameters":{"retry_after":1.5}}', 1.5),
        ({"parameters": {"retry_after": 7}}, 7.0),
        ('{"ok":false,"error_code":400,"description":"Bad Request"}', None),
        ('{"parameters":{"retry_after":"35"}}', None),
        ('{"parameters":{"retry_after":-1}}', None),
        ('{"parameters":{"retry_after":true}}', None),
        ('{"parameters":[1]}', None),
        ("<html>busy</html>", None),
        ("[1, 2]", None),
        (None, None),
    ],
)
def test_given_a_telegram_error_body_when_read_then_retry_after_is_extracted(
    body: object, expected: float | None
) -> None:
    assert telegram_retry_after(body) == expected  # type: ignore[arg-type]


def test_given_no_jitter_when_delays_are_computed_then_they_double_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=1, cap_s=30, jitter=0)

    delays = [policy.next_delay(attempt) for attempt in range(1, 9)]

    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.next_delay(10_000) == 30  # no float overflow on absurd attempt numbers


def test_given_jitter_when_delays_are_computed_then_they_spread_below_the_backoff() -> None:
    policy = RetryPolicy(base_s=10, cap_s=100, jitter=0.5)
    rng = random.Random(7)

    delays = [policy.next_delay(1, rng=rng) for _ in range(200)]

    assert all(5 <= d <= 10 for d in delays)
    assert len({round(d, 6) for d in delays}) > 150


def test_given_a_server_wait_when_delaying_then_it_is_honoured_but_capped() -> None:
    policy = RetryPolicy(base_s=1, cap_s=60, jitter=0.5)

    assert policy.next_delay(1, retry_after=35) == 35
    assert policy.next_delay(1, retry_after=3600) == 60
    assert policy.next_delay(1, retry_after=-3) == 0


def test_given_attempts_when_decided_then_done_retry_or_fail_with_reasons() -> None:
    policy = RetryPolicy(max_attempts=3, base_s=2, cap_s=60, jitter=0)

    assert decide(policy, 1, 200) == Decision("done", reason="HTTP 200")
    assert decide(policy, 1, 503) == Decision("retry", 2.0, reason="HTTP 503")
    assert decide(policy, 2, 429, retry_after=9) == Decision("retry", 9.0, reason="HTTP 429")
    assert decide(policy, 1, 404) == Decision("fail", reason="permanent error: HTTP 404")
    last = decide(policy, 3, TimeoutError("slow"))
    assert last.action == "fail"
    assert last.reason == "gave up after 3 attempts; last: TimeoutError: slow"


def test_given_settings_when_the_policy_is_built_then_max_attempts_comes_from_them() -> None:
    policy = delivery_policy(Settings(notify_max_attempts=4), base_s=0.5)

    assert (policy.max_attempts, policy.base_s) == (4, 0.5)
    assert policy.exhausted(4) and not policy.exhausted(3)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_s": 0}, {"base_s": 10, "cap_s": 5}, {"jitter": 1.5}],
)
def test_given_nonsense_numbers_when_a_policy_is_built_then_refused(
    kwargs: dict[str, float],
) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_given_attempt_zero_when_a_delay_is_asked_then_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy().next_delay(0)


@given(
    attempt=st.integers(1, 200),
    base=st.floats(0.01, 10),
    cap=st.floats(10, 3600),
    jitter=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_property_delays_stay_within_bounds(
    attempt: int, base: float, cap: float, jitter: float, seed: int
) -> None:
    policy = RetryPolicy(max_attempts=8, base_s=base, cap_s=cap, jitter=jitter)

    delay = policy.next_delay(attempt, rng=random.Random(seed))

    ceiling = min(cap, base * 2 ** (attempt - 1))
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9
