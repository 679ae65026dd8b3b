"""Gap records: opened per seen key on reconnect, closed by the first new event."""

from __future__ import annotations

from workers.ingester.gaps import Gap, GapTracker


def test_no_gap_before_anything_was_seen() -> None:
    assert GapTracker().on_reconnect() == []


def test_reconnect_opens_a_gap_per_key_and_first_new_event_closes_it() -> None:
    # Given BTC seen up to t=1500 and ETH up to t=1200
    gaps = GapTracker()
    gaps.seen("trades", "BTC", 1000, 1500)
    gaps.seen("trades", "ETH", 1100, 1200)
    # When the socket reconnects
    opened = gaps.on_reconnect()
    # Then each coin has an open gap from its last seen time
    assert {(g.key, g.from_ms, g.to_ms) for g in opened} == {
        ("BTC", 1500, None),
        ("ETH", 1200, None),
    }
    # When BTC's first new trade arrives at t=2100
    closed = gaps.seen("trades", "BTC", 2100, 2300)
    # Then the BTC gap is [1500, 2100] and ETH's is still open
    assert closed is not None and (closed.from_ms, closed.to_ms) == (1500, 2100)
    assert [g.key for g in gaps.open_gaps()] == ["ETH"]
    assert gaps.seen("trades", "BTC", 2400, 2400) is None


def test_a_gap_still_open_at_the_next_reconnect_is_not_opened_twice() -> None:
    gaps = GapTracker()
    gaps.seen("userFills", "0xu", 10, 20)
    first = gaps.on_reconnect()
    assert gaps.on_reconnect() == []
    assert gaps.open_gaps() == first


def test_gap_wire_form_names_coin_or_user() -> None:
    assert Gap("trades", "BTC", 1, 2).to_wire() == {
        "stream": "trades", "coin": "BTC", "user": None, "from_ms": 1, "to_ms": 2,
    }  # fmt: skip
    assert Gap("userFills", "0xu", 1).to_wire()["user"] == "0xu"


def test_out_of_order_first_event_never_makes_a_negative_gap() -> None:
    gaps = GapTracker()
    gaps.seen("trades", "BTC", 1000, 1500)
    gaps.on_reconnect()
    closed = gaps.seen("trades", "BTC", 1400, 1600)
    assert closed is not None and closed.to_ms == 1500
