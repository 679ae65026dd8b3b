"""Which spans completely imported archive files cover (domain/archive/coverage.py)."""

from __future__ import annotations

from domain.archive.coverage import JOIN_MS, merged


def test_consecutive_hours_join_and_a_missing_hour_splits() -> None:
    hour = 3_600_000
    spans = [(2 * hour + 5, 3 * hour - 2), (5, hour - 10), (hour + 3, 2 * hour - 1)]
    # hours 0, 1 and 2 (given out of order) join; hour 4 after a missing hour 3 stands apart
    assert merged([*spans, (4 * hour, 5 * hour)]) == [(5, 3 * hour - 2), (4 * hour, 5 * hour)]


def test_overlapping_and_nested_spans_merge_and_the_join_is_inclusive() -> None:
    assert merged([(0, 100), (50, 80), (90, 200)]) == [(0, 200)]
    assert merged([(0, 10), (10 + JOIN_MS, 20 + JOIN_MS)]) == [(0, 20 + JOIN_MS)]
    assert merged([(0, 10), (11 + JOIN_MS, 20 + JOIN_MS)]) == [
        (0, 10),
        (11 + JOIN_MS, 20 + JOIN_MS),
    ]
    assert merged([]) == []
