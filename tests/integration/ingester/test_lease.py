"""The feed's lease on a real Redis: one holder, fenced journal writes, handover, partition."""

from __future__ import annotations

import redis

from runtime import keys
from runtime.clock import ManualClock
from runtime.metrics import LEASE_LOST, Metrics
from runtime.redis_clients import quick_redis
from tests.support.services import free_port
from workers.ingester.gaps import JournalState
from workers.ingester.lease import Leadership, LeaseKeeper, fenced_journal_write, read_journal

FEED = "lease-test"
TTL_S = 1.5


class Candidate:
    def __init__(self, url: str, owner: str, clock: ManualClock, ready: bool = True) -> None:
        self.leadership = Leadership()
        self.metrics = Metrics()
        self.taken: list[JournalState] = []
        self.ready = ready
        self.keeper = LeaseKeeper(
            quick_redis(url, timeout_s=0.5), FEED, owner, TTL_S, self.leadership, clock,
            self.metrics, ready=lambda: self.ready, on_acquired=self.taken.append,
        )  # fmt: skip


def test_one_takes_the_lease_the_other_stands_by_and_journal_writes_are_fenced(
    redis_url: str,
) -> None:
    clock = ManualClock()
    a, b = Candidate(redis_url, "a", clock), Candidate(redis_url, "b", clock)
    client = redis.Redis.from_url(redis_url)
    client.hset(keys.GAPS_NEWEST.name(feed=FEED), mapping={"trades|BTC": 500, "*": 700})

    a.keeper.cycle()
    b.keeper.cycle()
    # Then a holds it with the first token and was handed the previous leader's journal
    assert a.leadership.fence == "1:a" and b.leadership.fence is None
    assert [(t.through, t.newest) for t in a.taken] == [(700, {("trades", "BTC"): 500})]
    assert b.leadership.other_leads and b.taken == []
    a.leadership.promote(500, a.leadership.fence)
    a.keeper.cycle()  # renews
    assert client.pttl(keys.INGEST_LEASE.name(feed=FEED)) > 1000
    assert fenced_journal_write(client, FEED, "1:a", {"*": 900}, {})
    # each sees the other ready in the candidates hash
    b.keeper.cycle()
    assert a.keeper.others_ready and b.keeper.others_ready

    # When a's lease lapses (a paused process) and b takes it with a new token
    client.delete(keys.INGEST_LEASE.name(feed=FEED))
    b.keeper.cycle()
    assert b.leadership.fence == "2:b" and b.taken[0].through == 900
    # Then a's journal writes are refused, and a stands by at its next cycle
    assert not fenced_journal_write(client, FEED, "1:a", {"*": 10**13}, {})
    assert read_journal(client, FEED).through == 900
    # a forgotten key (-1) leaves the journal, under the current token
    assert fenced_journal_write(client, FEED, "2:b", {"trades|BTC": -1}, {})
    assert read_journal(client, FEED).newest == {}
    a.keeper.cycle()
    assert not a.leadership.leading and a.leadership.fence is None
    assert a.metrics.counter(LEASE_LOST).labels("taken")._value.get() == 1
    client.close()


def test_an_unready_candidate_gives_ready_ones_a_ttl_to_take_a_free_lease(redis_url: str) -> None:
    clock = ManualClock()
    slow = Candidate(redis_url, "slow", clock, ready=False)
    slow.keeper.cycle()
    assert slow.leadership.fence is None
    clock.advance(TTL_S + 0.1)
    slow.keeper.cycle()  # nobody ready came: it leads, socket down or not
    assert slow.leadership.fence is not None


def test_a_leader_stopping_releases_the_lease_and_withdraws(redis_url: str) -> None:
    clock = ManualClock()
    a, b = Candidate(redis_url, "a", clock), Candidate(redis_url, "b", clock)
    a.keeper.cycle()
    b.keeper.cycle()
    a.leadership.promote(None, a.leadership.fence)
    a.keeper.stop(release=True)
    client = redis.Redis.from_url(redis_url)
    assert client.get(keys.INGEST_LEASE.name(feed=FEED)) is None
    assert client.hkeys(keys.INGEST_CANDIDATES.name(feed=FEED)) == [b"b"]
    b.keeper.cycle()  # at once, not after the TTL
    assert b.leadership.fence is not None and not a.leadership.leading
    client.close()


def test_a_leader_cut_off_from_redis_stops_leading_before_its_lease_can_expire(
    redis_url: str,
) -> None:
    clock = ManualClock()
    a = Candidate(redis_url, "a", clock)
    a.keeper.cycle()
    a.leadership.promote(None, a.leadership.fence)
    # When Redis becomes unreachable (a client pointed at a closed port)
    a.keeper._client = quick_redis(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    clock.advance(0.5)
    a.keeper.cycle()
    assert a.leadership.leading and not a.keeper.reachable  # still inside its lease
    clock.advance(0.8)  # 1.3 s after the last renewal: past 80 % of the TTL
    a.keeper.cycle()
    assert not a.leadership.leading
    assert a.metrics.counter(LEASE_LOST).labels("unrenewed")._value.get() == 1
