"""Gap records: opened per seen key when a connection ends, closed by the first new event,
journaled so the next start keeps them open and finds the keys a crash left behind."""

from __future__ import annotations

import logging

import orjson

from workers.ingester.gaps import (
    Gap,
    GapJournal,
    GapKey,
    GapTracker,
    JournalState,
    journal_field,
    parse_field,
    parse_journal,
)


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


def test_the_journal_holds_open_gaps_until_they_close() -> None:
    journal = GapJournal()
    gaps = GapTracker(journal)
    gaps.seen("trades", "BTC", 1, 10)
    (gap,) = gaps.on_disconnect("closed", 11)
    newest, open_ = journal.take()
    assert newest == {}  # newest times are what was *published* (the publisher notes them)
    assert orjson.loads(open_["trades|BTC"] or b"")["id"] == gap.id
    gaps.seen("trades", "BTC", 20, 21)
    assert journal.take()[1] == {"trades|BTC": None}  # None: delete it


def test_published_newest_times_only_grow_and_a_failed_write_gives_them_back() -> None:
    journal = GapJournal()
    journal.note_published({"trades|BTC": 10, "*": 10})
    journal.note_published({"trades|BTC": 8, "trades|ETH": 9, "*": 9})
    taken = journal.take()
    assert taken[0] == {"trades|BTC": 10, "trades|ETH": 9, "*": 10}
    journal.note_published({"trades|BTC": 12})
    journal.give_back(*taken)
    assert journal.take()[0] == {"trades|BTC": 12, "trades|ETH": 9, "*": 10}


def _state(open_gaps: list[Gap], newest: dict[GapKey, int], through: int) -> JournalState:
    return JournalState(open_gaps, newest, through)


def test_a_start_after_a_crash_keeps_old_gaps_open_and_opens_crash_gaps() -> None:
    # Given a previous leader that left ETH's gap open and published BTC up to 5,000
    old = Gap("trades", "ETH", 3000, ended_by="shutdown", opened_at=3001, id="kept")
    gaps = GapTracker()
    prev = _state([old], {("trades", "ETH"): 3000, ("trades", "BTC"): 5000}, 5000)
    # When this run takes over before it has received anything
    result = gaps.take_over(prev, None, 9000, margin_ms=2000)
    # Then ETH's gap is the same gap, and BTC has a crash gap from its newest time
    assert result.cutoff == 3000 and not result.covered
    crash = [g for g in result.record if g.ended_by == "crash"]
    assert [(g.key, g.from_ms, g.to_ms, g.opened_at) for g in crash] == [("BTC", 5000, None, 9000)]
    assert {g.id for g in gaps.open_gaps()} == {"kept", crash[0].id}
    # And the first new events close both
    assert gaps.seen("trades", "ETH", 10_000, 10_001) is old and old.to_ms == 10_000
    assert gaps.seen("trades", "BTC", 10_002, 10_003) is crash[0]


def test_a_crash_gap_starts_no_earlier_than_the_record_reaches() -> None:
    # BTC's last trade was published long ago, but the feed's record reaches to 9,000: the
    # leader was receiving BTC all along, so the hole starts at the cutoff, not at 1,000.
    gaps = GapTracker()
    result = gaps.take_over(_state([], {("trades", "BTC"): 1000}, 9000), None, 9500, 2000)
    assert [(g.from_ms, g.ended_by) for g in result.record] == [(7000, "crash")]


def test_events_seen_before_the_takeover_close_the_gaps_at_their_first_time() -> None:
    # Given a run that saw BTC from t=20,000 on before it took the lease
    journal = GapJournal()
    gaps = GapTracker(journal)
    gaps.seen("trades", "BTC", 20_000, 21_000)
    journal.take()
    old = Gap("trades", "ETH", 300, id="eth")
    result = gaps.take_over(_state([old], {("trades", "BTC"): 5000}, 5000), None, 24_000, 2000)
    # Then BTC's crash gap is closed at this run's first BTC event; ETH's stays open
    btc = [g for g in result.record if g.key == "BTC"]
    assert [(g.from_ms, g.to_ms) for g in btc] == [(5000, 20_000)]
    assert [g.id for g in gaps.open_gaps()] == ["eth"]
    assert journal.take()[1]["trades|BTC"] is None
    # And this run's own newest BTC time is kept
    reopened = gaps.on_disconnect("closed", 25_000)
    assert [(g.key, g.from_ms) for g in reopened] == [("BTC", 21_000)]


def test_a_standby_whose_buffer_reaches_back_records_no_gap() -> None:
    # Given a standby receiving since 1,000 and a leader whose record reaches 50,000, which
    # left a recorded gap open from 49,000 and a handed-over (unrecorded) one from 49,500
    journal = GapJournal()
    gaps = GapTracker(journal)
    gaps.seen("trades", "BTC", 1000, 51_000)
    recorded = Gap("trades", "ETH", 49_000, id="recorded")
    handed = Gap("trades", "SOL", 49_500, id="handed", recorded=False)
    prev = _state([recorded, handed], {("trades", "BTC"): 50_000}, 50_000)
    result = gaps.take_over(prev, 1000, 52_000, 2000)
    # Then nothing is a hole: the recorded gap's row is ended where it began, the other
    # never reaches the database, and the journal forgets both
    assert result.covered and result.cutoff == 48_000
    assert [(g.id, g.from_ms, g.to_ms) for g in result.record] == [("recorded", 49_000, 49_000)]
    assert gaps.open_gaps() == []
    assert journal.take()[1] == {"trades|ETH": None, "trades|SOL": None}


def test_a_standby_that_dropped_part_of_its_buffer_records_the_part() -> None:
    # Given a standby that had to drop what it held up to 60,000, and a record to 50,000
    gaps = GapTracker()
    gaps.seen("trades", "BTC", 1000, 70_000)
    old = Gap("trades", "ETH", 49_000, id="eth")
    prev = _state([old], {("trades", "BTC"): 49_900, ("trades", "SOL"): 20_000}, 50_000)
    result = gaps.take_over(prev, 60_000, 71_000, 2000)
    # Then every key has a closed gap up to where the buffer now begins
    spans = sorted((g.key, g.from_ms, g.to_ms, g.ended_by) for g in result.record)
    assert spans == [
        ("BTC", 49_900, 60_000, "crash"),
        ("ETH", 49_000, 60_000, "closed"),
        ("SOL", 48_000, 60_000, "crash"),
    ]
    assert gaps.open_gaps() == [] and not result.covered


def test_a_standby_with_its_socket_down_records_its_own_open_gaps() -> None:
    # Given a standby whose socket dropped at 30,000 (its own gap on BTC is open)
    gaps = GapTracker()
    gaps.seen("trades", "BTC", 1000, 29_000)
    (own,) = gaps.on_disconnect("closed", 30_000)
    old = Gap("trades", "BTC", 29_500, id="leader's")
    result = gaps.take_over(_state([old], {("trades", "BTC"): 29_500}, 29_500), None, 31_000, 2000)
    # Then one gap stays open for BTC: the leader's row, from the earlier start
    assert [g.id for g in gaps.open_gaps()] == ["leader's"] and old.from_ms == 29_000
    assert [g.id for g in result.record] == ["leader's"] and own not in result.record


def test_journal_field_names_round_trip_and_junk_is_refused() -> None:
    assert parse_field(journal_field("userFills", "0xab")) == ("userFills", "0xab")
    assert parse_field("nonsense") is None and parse_field("trades|") is None
    assert parse_field("mids|BTC") is None


def test_the_journal_read_back_from_redis_skips_junk() -> None:
    gap = Gap("trades", "ETH", 300, id="g", recorded=False)
    state = parse_journal(
        {b"trades|ETH": gap.journal_doc(), b"trades|BAD": b"{not json"},
        {b"trades|BTC": b"500", b"*": b"700", b"mids|BTC": b"1", b"trades|ETH": b"x"},
        logging.getLogger("test"),
    )
    assert [(g.id, g.recorded) for g in state.open_gaps] == [("g", False)]
    assert state.newest == {("trades", "BTC"): 500} and state.through == 700
    # A journal written before `*` existed reaches to its newest key
    assert parse_journal({}, {b"trades|BTC": b"500"}, logging.getLogger("t")).through == 500


def test_loss_is_a_closed_gap() -> None:
    gap = GapTracker.loss("trades", "BTC", 10, 20, 30)
    assert (gap.from_ms, gap.to_ms, gap.ended_by, gap.opened_at) == (10, 20, "loss", 30)


def test_a_key_no_longer_followed_leaves_the_journal_and_its_open_gap_ends() -> None:
    journal = GapJournal()
    gaps = GapTracker(journal)
    gaps.seen("trades", "OLD", 1000, 2000)
    (gap,) = gaps.on_disconnect("closed", 2100)
    journal.note_published({"trades|OLD": 2000})
    journal.take()
    ended = gaps.forget("trades", "OLD", 9000)
    assert ended is gap and gap.to_ms == 9000
    assert journal.take() == ({"trades|OLD": -1}, {"trades|OLD": None})
    # nothing of it is left to open a gap at the next disconnect
    assert gaps.on_disconnect("closed", 9500) == []
    # a failed write gives the forgetting back; a later publish (relisted) replaces it
    journal.forget("trades", "OLD")
    taken = journal.take()
    journal.give_back(*taken)
    journal.note_published({"trades|OLD": 12_000})
    assert journal.take()[0] == {"trades|OLD": 12_000}
