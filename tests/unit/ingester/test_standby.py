"""A standby's publisher holds its batches and, promoted, publishes from the cutoff on."""

from __future__ import annotations

from typing import cast

from runtime.clock import ManualClock
from runtime.metrics import EVENTS_LOST, Metrics
from tests.unit.ingester.test_outage_replay import ScriptedBroker
from workers.ingester.broker import PERSIST_CONTEXTS, PERSIST_TRADES, BrokerClient
from workers.ingester.gaps import GapJournal
from workers.ingester.lease import Leadership
from workers.ingester.outbox import Envelope, Outbox
from workers.ingester.publisher import Publisher


def trades(seq: int, newest_ms: int, count: int = 10) -> Envelope:
    env = Envelope("trades", seq, count, f"trades-{seq}".encode(), (PERSIST_TRADES,))
    env.meta["newest"] = {"trades|BTC": newest_ms, "*": newest_ms}
    return env


def contexts(seq: int) -> Envelope:
    return Envelope("asset_contexts", seq, 1, f"ctx-{seq}".encode(), (PERSIST_CONTEXTS,))


class Standby:
    def __init__(self, window_s: float = 10.0, max_events: int = 1000, outage: int = 50) -> None:
        self.clock = ManualClock()
        self.outbox = Outbox(10_000)
        self.broker = ScriptedBroker()
        self.leadership = Leadership()
        self.journal = GapJournal()
        self.metrics = Metrics()
        self.publisher = Publisher(
            self.outbox, cast(BrokerClient, self.broker), self.metrics, clock=self.clock,
            leadership=self.leadership, journal=self.journal, hold_window_s=window_s,
            hold_max_events=max_events, outage_max_events=outage,
        )  # fmt: skip

    def put(self, *envs: Envelope) -> None:
        for env in envs:
            self.outbox.put(env)
        self.publisher._step()

    def drain(self) -> None:
        self.publisher._step()  # a promotion moves the held batches into the outbox
        while len(self.outbox):
            self.publisher._step()

    def sent(self) -> list[str]:
        return [b.decode() for b in self.broker.sent]


def test_a_standby_sends_nothing_and_holds_its_batches() -> None:
    s = Standby()
    s.leadership.other_leads = True
    s.put(trades(1, 1000), contexts(2))
    assert s.sent() == [] and len(s.outbox) == 0
    assert s.publisher._held_events == 11


def test_the_held_window_drops_old_batches_and_remembers_how_far_back_it_reaches() -> None:
    s = Standby(window_s=10.0)
    s.leadership.other_leads = True
    s.put(trades(1, 1000))
    s.clock.advance(11)
    s.put(trades(2, 12_000))
    assert s.publisher._held_events == 10
    assert s.leadership.evicted_newest_ms == 1000
    # dropping from a standby's window is not a loss: the leader published those
    assert s.metrics.counter(EVENTS_LOST).labels("trades")._value.get() == 0


def test_with_no_leader_in_sight_it_keeps_an_outage_buffer_and_counts_what_overflows() -> None:
    s = Standby(window_s=1.0, outage=25)
    s.put(trades(1, 1000), trades(2, 2000))
    s.clock.advance(60)  # far past the window: kept, nobody else publishes them
    s.put(trades(3, 3000))
    assert [e.seq for _, e in s.publisher._held] == [2, 3]
    assert s.metrics.counter(EVENTS_LOST).labels("trades")._value.get() == 10
    assert s.leadership.evicted_newest_ms == 1000


def test_promoted_it_publishes_what_reaches_past_the_cutoff_then_what_follows() -> None:
    s = Standby()
    s.leadership.other_leads = True
    s.put(trades(1, 1000), trades(2, 5000), contexts(3))
    s.clock.advance(5)
    s.put(contexts(4), trades(5, 6000))
    # When the lease is taken and the gaps settled with a record reaching 4,000
    s.leadership.acquired("7:me")
    s.leadership.promote(4000, "7:me")
    s.outbox.put(trades(6, 7000))
    s.drain()
    # Then the batches past the cutoff go first, in order, and recent state batches too
    assert s.sent() == ["trades-2", "ctx-4", "trades-5", "trades-6"]
    # And the journal learns how far the feed's record now reaches
    assert s.journal.take()[0] == {"trades|BTC": 7000, "*": 7000}


def test_nothing_is_dropped_between_taking_the_lease_and_the_promotion() -> None:
    s = Standby(window_s=1.0)
    s.leadership.other_leads = True
    s.put(trades(1, 1000))
    s.leadership.acquired("7:me")
    s.clock.advance(30)
    s.put(trades(2, 2000))
    assert [e.seq for _, e in s.publisher._held] == [1, 2]


def test_a_fresh_feed_publishes_everything_held() -> None:
    s = Standby()
    s.put(trades(1, 1000), contexts(2))
    s.leadership.acquired("1:me")
    s.clock.advance(30)
    s.leadership.promote(None, s.leadership.fence)
    s.drain()
    assert s.sent() == ["trades-1", "ctx-2"]


def test_a_demoted_leader_stops_sending_and_holds_the_rest() -> None:
    s = Standby()
    s.leadership.acquired("1:me")
    s.leadership.promote(None, s.leadership.fence)
    s.put(trades(1, 1000))
    s.drain()
    s.leadership.lost()
    s.put(trades(2, 2000))
    assert s.sent() == ["trades-1"]
    assert [e.seq for _, e in s.publisher._held] == [2]


def test_a_takeover_settled_after_the_lease_was_lost_makes_nobody_lead() -> None:
    s = Standby()
    s.leadership.acquired("3:me", parties=2)
    assert s.leadership.promote(None, "3:me")  # one socket's pipeline settled
    assert not s.leadership.leading  # the other has not yet
    s.leadership.lost()
    assert not s.leadership.promote(None, "3:me")  # the second settles too late
    assert not s.leadership.leading and s.leadership.fence is None
    # a new lease starts its own count
    s.leadership.acquired("4:me", parties=1)
    assert not s.leadership.promote(None, "3:me")
    assert s.leadership.promote(None, "4:me") and s.leadership.leading
