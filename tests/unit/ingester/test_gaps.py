"""Gap records: opened per seen key when a connection ends, closed by the first new event,
journaled so the next start keeps them open and finds the keys a crash left behind."""

from __future__ import annotations

import orjson

from workers.ingester.gaps import Gap, GapJournal, GapTracker, journal_field, parse_field


def test_no_gap_before_anything_was_seen() -> None:
    assert GapTracker().on_disconnect("closed", 0) == []


def test_a_disconnect_opens_a_gap_per_key_and_first_new_event_closes_it() -> None:
    # Given BTC seen up to t=1500 and ETH up to t=1200
    gaps = GapTracker()
    gaps.seen("trades", "BTC", 1000, 1500)
    gaps.seen("trades", "ETH", 1100, 1200)
    # When the socket drops
    opened = gaps.on_disconnect("pong_timeout", 1700)
    # Then each coin has an open gap from its last seen time, named for the reason
    assert {(g.key, g.from_ms, g.to_ms, g.ended_by, g.opened_at) for g in opened} == {
        ("BTC", 1500, None, "pong_timeout", 1700),
        ("ETH", 1200, None, "pong_timeout", 1700),
    }
    # When BTC's first new trade arrives at t=2100
    closed = gaps.seen("trades", "BTC", 2100, 2300)
    # Then the BTC gap is [1500, 2100] and ETH's is still open
    assert closed is not None and (closed.from_ms, closed.to_ms) == (1500, 2100)
    assert [g.key for g in gaps.open_gaps()] == ["ETH"]
    assert gaps.seen("trades", "BTC", 2400, 2400) is None


def test_a_gap_still_open_at_the_next_disconnect_is_not_opened_twice() -> None:
    gaps = GapTracker()
    gaps.seen("userFills", "0xu", 10, 20)
    first = gaps.on_disconnect("closed", 30)
    assert gaps.on_disconnect("server_close", 40) == []
    assert gaps.open_gaps() == first and first[0].ended_by == "closed"


def test_gap_wire_form_names_coin_or_user_and_round_trips() -> None:
    gap = Gap("trades", "BTC", 1, 2, ended_by="shutdown", opened_at=5, id="g-1")
    assert gap.to_wire() == {
        "id": "g-1", "stream": "trades", "key": "BTC", "coin": "BTC", "user": None,
        "from_ms": 1, "to_ms": 2, "ended_by": "shutdown", "opened_at": 5,
    }  # fmt: skip
    assert Gap("userFills", "0xu", 1).to_wire()["user"] == "0xu"
    assert Gap.from_wire(orjson.loads(orjson.dumps(gap.to_wire()))) == gap


def test_out_of_order_first_event_never_makes_a_negative_gap() -> None:
    gaps = GapTracker()
    gaps.seen("trades", "BTC", 1000, 1500)
    gaps.on_disconnect("closed", 1600)
    closed = gaps.seen("trades", "BTC", 1400, 1600)
    assert closed is not None and closed.to_ms == 1500


def test_the_journal_holds_newest_times_and_open_gaps_until_they_close() -> None:
    journal = GapJournal()
    gaps = GapTracker(journal)
    gaps.seen("trades", "BTC", 1, 10)
    gaps.seen("trades", "BTC", 5, 8)  # older: the newest time stays 10
    (gap,) = gaps.on_disconnect("closed", 11)
    newest, open_ = journal.take()
    assert newest == {"trades|BTC": 10}
    assert orjson.loads(open_["trades|BTC"] or b"")["id"] == gap.id
    gaps.seen("trades", "BTC", 20, 21)
    newest, open_ = journal.take()
    assert newest == {"trades|BTC": 21} and open_ == {"trades|BTC": None}  # None: delete it


def test_a_failed_write_gives_changes_back_without_overwriting_newer_ones() -> None:
    journal = GapJournal()
    journal.note_seen("trades", "BTC", 10)
    taken = journal.take()
    journal.note_seen("trades", "BTC", 12)
    journal.give_back(*taken)
    assert journal.take()[0] == {"trades|BTC": 12}


def test_restore_keeps_old_open_gaps_and_opens_crash_gaps_for_the_rest() -> None:
    # Given a previous run that left ETH's gap open and saw BTC up to 500 with no gap open
    old = Gap("trades", "ETH", 300, ended_by="shutdown", opened_at=301, id="kept")
    gaps = GapTracker()
    kept, crashed = gaps.restore([old], {("trades", "ETH"): 300, ("trades", "BTC"): 500}, 900)
    # Then ETH's gap is the same gap, and BTC has a crash gap from 500
    assert kept == [old]
    assert [(g.key, g.from_ms, g.ended_by, g.opened_at) for g in crashed] == [
        ("BTC", 500, "crash", 900)
    ]
    assert {g.id for g in gaps.open_gaps()} == {"kept", crashed[0].id}
    # And the first new events close both
    assert gaps.seen("trades", "ETH", 1000, 1001) is old and old.to_ms == 1000
    assert gaps.seen("trades", "BTC", 1002, 1003) is crashed[0]


def test_a_journal_read_late_closes_gaps_at_the_first_event_of_this_run() -> None:
    # Given a run that saw BTC from t=2000 on before Redis answered
    journal = GapJournal()
    gaps = GapTracker(journal)
    gaps.seen("trades", "BTC", 2000, 2100)
    gaps.seen("trades", "BTC", 2200, 2300)
    journal.take()
    # When the previous run's journal (BTC newest 500, ETH open from 300) is restored
    old = Gap("trades", "ETH", 300, id="eth")
    kept, crashed = gaps.restore([old], {("trades", "BTC"): 500}, 2400)
    # Then BTC's crash gap is closed at this run's first BTC event; ETH's stays open
    assert [(g.key, g.from_ms, g.to_ms) for g in crashed] == [("BTC", 500, 2000)]
    assert [g.id for g in gaps.open_gaps()] == ["eth"] and kept == [old]
    assert journal.take()[1] == {"trades|BTC": None}
    # And this run's own newest BTC time is kept, not the older journaled one
    reopened = gaps.on_disconnect("closed", 2500)
    assert [(g.key, g.from_ms) for g in reopened] == [("BTC", 2300)]


def test_journal_field_names_round_trip_and_junk_is_refused() -> None:
    assert parse_field(journal_field("userFills", "0xab")) == ("userFills", "0xab")
    assert parse_field("nonsense") is None and parse_field("trades|") is None
    assert parse_field("mids|BTC") is None


def test_loss_is_a_closed_gap() -> None:
    gap = GapTracker.loss("trades", "BTC", 10, 20, 30)
    assert (gap.from_ms, gap.to_ms, gap.ended_by, gap.opened_at) == (10, 20, "loss", 30)
