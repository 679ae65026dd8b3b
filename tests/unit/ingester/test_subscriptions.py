"""Subscription registry: desired state, paced resubscribe, acks matched as subsets."""

from __future__ import annotations

from typing import Any

from runtime.clock import ManualClock
from workers.ingester.pacing import TokenBucket, per_minute
from workers.ingester.subscriptions import SubscriptionRegistry, echo_matches, sub_id


def registry(clock: ManualClock, rate: float = 10.0, burst: float = 100.0) -> SubscriptionRegistry:
    return SubscriptionRegistry(TokenBucket(rate, burst, clock))


def drain(reg: SubscriptionRegistry) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while (sub := reg.next_to_send()) is not None:
        out.append(sub)
    return out


def test_ack_matches_when_the_echo_adds_default_keys() -> None:
    sent = {"type": "l2Book", "coin": "BTC"}
    assert echo_matches(sent, {"type": "l2Book", "coin": "BTC", "nSigFigs": None, "fast": False})
    assert not echo_matches(sent, {"type": "l2Book", "coin": "ETH", "nSigFigs": None})
    assert not echo_matches(
        {"type": "l2Book", "coin": "BTC", "fast": True},
        {"type": "l2Book", "coin": "BTC", "fast": False},
    )
    assert not echo_matches(sent, "not a dict")


def test_identity_ignores_key_order_and_desire_is_idempotent() -> None:
    reg = registry(ManualClock())
    reg.desire({"type": "trades", "coin": "BTC"})
    reg.desire({"coin": "BTC", "type": "trades"})
    assert len(reg.desired) == 1
    assert sub_id({"a": 1, "b": 2}) == sub_id({"b": 2, "a": 1})


def test_every_reconnect_resubscribes_everything_and_needs_new_acks() -> None:
    # Given two subscriptions acknowledged on the first socket
    clock = ManualClock()
    reg = registry(clock)
    subs = [{"type": "trades", "coin": "BTC"}, {"type": "activeAssetCtx", "coin": "BTC"}]
    for s in subs:
        reg.desire(s)
    reg.start_connection()
    sent = drain(reg)
    for s in sent:
        assert reg.on_ack({**s, "extra": None}) == s
    assert reg.all_acked
    # When the socket is replaced
    reg.start_connection()
    # Then nothing counts as subscribed and both are sent again
    assert not reg.all_acked and reg.acked_count() == 0
    assert drain(reg) == subs


def test_already_subscribed_error_counts_as_the_ack() -> None:
    reg = registry(ManualClock())
    reg.desire({"type": "l2Book", "coin": "SOL"})
    reg.start_connection()
    drain(reg)
    message = 'Already subscribed: {"type":"l2Book","coin":"SOL","nSigFigs":null,"mantissa":null,"fast":false}'
    assert reg.on_error(message) == {"type": "l2Book", "coin": "SOL"}
    assert reg.all_acked
    assert reg.on_error("Cannot subscribe to more than 1000 channels.") is None
    assert reg.on_error("Already subscribed: {not json") is None


def test_resubscribe_burst_is_paced_by_the_bucket() -> None:
    # Given 30 subscriptions and a bucket of burst 10 refilling 5 per second
    clock = ManualClock()
    reg = registry(clock, rate=5.0, burst=10.0)
    for i in range(30):
        reg.desire({"type": "trades", "coin": f"C{i}"})
    reg.start_connection()
    # When sending as fast as allowed
    assert len(drain(reg)) == 10
    assert reg.send_wait_s() == 0.2
    clock.advance(1.0)
    # Then one second later five more may go, and never more
    assert len(drain(reg)) == 5
    clock.advance(3.0)  # refills only up to the burst size
    assert len(drain(reg)) == 10
    clock.advance(1.0)
    assert len(drain(reg)) == 5 and reg.send_wait_s() is None
    assert [s["coin"] for s in reg.pending()][:2] == ["C0", "C1"]


def test_per_minute_bucket_never_exceeds_the_budget_in_any_minute() -> None:
    # Given the exchange-facing budget of 1800 messages a minute
    clock = ManualClock()
    bucket = per_minute(1800, clock)
    taken = 0
    # When taking greedily for one minute in 10 ms steps
    for _ in range(6000):
        while bucket.try_take():
            taken += 1
        clock.advance(0.01)
    # Then at most the budget went through
    assert 1700 <= taken <= 1800
