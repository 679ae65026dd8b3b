"""The simulator's /info weight accounting: per epoch minute and per sliding 60 s."""

from __future__ import annotations

from workers.simulator.stats import MINUTES_KEPT, Stats

MINUTE = 60_000


def test_weight_is_summed_per_epoch_minute_and_over_any_sixty_seconds() -> None:
    stats = Stats()
    # 100 at the end of minute 10 and 100 at the start of minute 11: each minute sees 100,
    # but one 60 s window sees 200
    for i in range(50):
        stats.add_info_weight(2, 10 * MINUTE + 50_000 + i * 100)
    for i in range(50):
        stats.add_info_weight(2, 11 * MINUTE + 1_000 + i * 100)
    assert stats.info_weight == 200
    assert stats.info_weight_by_minute == {"10": 100, "11": 100}
    assert stats.info_weight_max_60s == 200
    # a minute later the window has moved on: the maximum stays what it was
    stats.add_info_weight(20, 13 * MINUTE)
    assert stats.info_weight_max_60s == 200
    snapshot = stats.snapshot()
    assert snapshot["info_weight_by_minute"] == {"10": 100, "11": 100, "13": 20}
    assert "_recent" not in snapshot


def test_only_the_recent_minutes_are_kept() -> None:
    stats = Stats()
    for minute in range(MINUTES_KEPT + 5):
        stats.add_info_weight(1, minute * MINUTE)
    assert len(stats.info_weight_by_minute) == MINUTES_KEPT
    assert min(stats.info_weight_by_minute, key=int) == "5"
