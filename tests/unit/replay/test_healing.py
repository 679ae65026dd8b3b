"""What a replay covers: each coin's span of trade times less the replay's own holes."""

from __future__ import annotations

from typing import Any

from workers.replay.healing import covered_spans


def hole(key: str, from_ms: int, to_ms: int | None, stream: str = "trades") -> dict[str, Any]:
    return {"stream": stream, "key": key, "from_ms": from_ms, "to_ms": to_ms}


def test_a_coins_span_is_cut_by_its_own_holes_only() -> None:
    seen = {"BTC": [100, 900], "ETH": [100, 900], "SOL": [100, 900]}
    holes = [
        hole("BTC", 300, 400),
        hole("BTC", 600, 650),
        hole("ETH", 500, None),  # still open where the replay ended
        hole("SOL", 50, 120),  # began before the span: its end starts the span
        hole("SOL", 200, 300, stream="userFills"),  # a wallet's, not the coin's
    ]
    assert covered_spans(seen, holes) == {
        "BTC": [(100, 300), (400, 600), (650, 900)],
        "ETH": [(100, 500)],
        "SOL": [(120, 900)],
    }


def test_an_open_hole_from_before_the_span_leaves_nothing() -> None:
    assert covered_spans({"BTC": [100, 900]}, [hole("BTC", 50, None)]) == {"BTC": []}
