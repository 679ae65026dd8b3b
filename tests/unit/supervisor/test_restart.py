"""Restart policy: backoff doubles up to a cap, a stable run resets it, a crash loop gives up."""

from __future__ import annotations

import pytest

from workers.supervisor.restart import GiveUp, Restart, RestartPolicy, RestartTracker


def test_given_repeated_quick_deaths_when_deciding_then_delay_doubles_up_to_the_cap() -> None:
    tracker = RestartTracker(RestartPolicy(initial_s=1, max_s=5, max_failures=10))

    delays = [tracker.on_exit(1, ran_for_s=0.5) for _ in range(5)]

    assert delays == [Restart(1), Restart(2), Restart(4), Restart(5), Restart(5)]


def test_given_a_long_healthy_run_when_it_dies_then_the_streak_starts_over() -> None:
    tracker = RestartTracker(RestartPolicy(initial_s=1, max_s=30, stable_after_s=60))
    tracker.on_exit(1, ran_for_s=1)
    tracker.on_exit(1, ran_for_s=1)

    decision = tracker.on_exit(1, ran_for_s=61)

    assert decision == Restart(1)
    assert tracker.failures == 1


def test_given_more_short_runs_than_allowed_when_deciding_then_it_gives_up() -> None:
    tracker = RestartTracker(RestartPolicy(initial_s=1, max_failures=2))
    assert isinstance(tracker.on_exit(1, ran_for_s=0), Restart)
    assert isinstance(tracker.on_exit(-9, ran_for_s=0), Restart)

    decision = tracker.on_exit(1, ran_for_s=0)

    assert isinstance(decision, GiveUp)
    assert "3 times in a row" in decision.reason


def test_given_exit_code_2_when_deciding_then_it_gives_up_at_once() -> None:
    # 2 is a bad option or setting: the same command would fail the same way again.
    decision = RestartTracker(RestartPolicy()).on_exit(2, ran_for_s=500)

    assert isinstance(decision, GiveUp)
    assert "setting" in decision.reason


@pytest.mark.parametrize(
    "kwargs", [{"initial_s": 0}, {"initial_s": 5, "max_s": 1}, {"max_failures": 0}]
)
def test_given_nonsense_policy_when_built_then_it_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="initial_s"):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]
