"""Log throttling: the first occurrence with its sample, then one tally per period."""

from __future__ import annotations

import logging

import pytest

from runtime.clock import ManualClock
from workers.ingester.throttle import LogThrottle


def test_repeats_are_suppressed_then_tallied(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    throttle = LogThrottle(logging.getLogger("t"), clock, period_s=60)
    with caplog.at_level(logging.WARNING):
        assert throttle.log(logging.WARNING, "k", "bad %s", "one")
        assert not throttle.log(logging.WARNING, "k", "bad %s", "two")
        assert throttle.log(logging.WARNING, "other", "different")
        clock.advance(60)
        assert throttle.log(logging.WARNING, "k", "bad %s", "three")
    assert [r.getMessage() for r in caplog.records] == [
        "bad one", "different", "bad three (+1 more like it since the last report)",
    ]  # fmt: skip
