"""The one retry schedule: limits, the server's wait and the ceiling, without jitter noise."""

from __future__ import annotations

import random

import pytest

from runtime.retry import RetryPolicy


def test_given_no_limit_when_attempts_pile_up_then_never_exhausted() -> None:
    policy = RetryPolicy(max_attempts=None)
    assert policy.max_retries is None
    assert not policy.exhausted(10**9)


def test_given_a_limit_when_counted_then_retries_are_attempts_minus_one() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.max_retries == 2
    assert [policy.exhausted(n) for n in (1, 2, 3)] == [False, False, True]


def test_given_a_ceiling_when_delaying_then_it_caps_backoff_and_server_wait_alike() -> None:
    policy = RetryPolicy(base_s=1, cap_s=60, jitter=0)
    assert policy.next_delay(9, ceiling_s=5) == 5
    assert policy.next_delay(1, retry_after=30, ceiling_s=5) == 5
    assert policy.next_delay(2, ceiling_s=5) == 2


def test_given_no_jitter_when_delaying_then_randomness_is_not_consumed() -> None:
    rng = random.Random(1)
    expected = random.Random(1).random()
    RetryPolicy(jitter=0).next_delay(3, rng=rng)
    assert rng.random() == expected


def test_given_equal_jitter_when_delaying_then_between_half_and_all_of_the_step() -> None:
    policy = RetryPolicy(base_s=2, cap_s=60, jitter=0.5)
    rng = random.Random(3)
    samples = [policy.next_delay(3, rng=rng) for _ in range(500)]
    assert min(samples) >= 4 and max(samples) <= 8


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base_s": -1}, {"cap_s": 0.5}, {"jitter": -0.1}]
)
def test_given_nonsense_when_built_then_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
