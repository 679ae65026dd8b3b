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


def messages(reg: SubscriptionRegistry) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while (message := reg.next_message()) is not None:
        method, sub = message
        out.append((method, sub.get("coin") or sub["type"]))
    return out


def acked_registry(coins: list[str]) -> SubscriptionRegistry:
    reg = registry(ManualClock())
    for coin in coins:
        reg.desire({"type": "trades", "coin": coin})
    reg.start_connection()
    for _, sub in iter(reg.next_message, None):
        reg.on_ack(sub)
    assert reg.all_acked
    return reg


def test_given_a_live_socket_when_a_coin_is_dropped_then_it_is_unsubscribed_and_never_resent() -> (
    None
):
    reg = acked_registry(["BTC", "ETH"])
    # When ETH is no longer wanted
    assert reg.undesire({"type": "trades", "coin": "ETH"})
    assert not reg.undesire({"type": "trades", "coin": "ETH"})
    # Then an unsubscribe goes out, and the next socket subscribes BTC only
    assert messages(reg) == [("unsubscribe", "ETH")]
    assert reg.all_acked and [s["coin"] for s in reg.desired] == ["BTC"]
    reg.start_connection()
    assert messages(reg) == [("subscribe", "BTC")]


def test_given_a_queued_subscription_when_dropped_before_sending_then_nothing_is_sent() -> None:
    reg = registry(ManualClock())
    reg.desire({"type": "trades", "coin": "BTC"})
    reg.start_connection()
    reg.undesire({"type": "trades", "coin": "BTC"})
    assert messages(reg) == [] and reg.all_acked


def test_given_a_silent_stream_when_resubscribed_then_unsubscribe_and_subscribe_go_first() -> None:
    reg = acked_registry(["BTC", "ETH"])
    reg.desire({"type": "trades", "coin": "SOL"})  # queued before the resubscribe
    assert reg.resubscribe({"type": "trades", "coin": "ETH"})
    assert not reg.resubscribe({"type": "trades", "coin": "XRP"})  # not subscribed here
    assert not reg.all_acked
    assert messages(reg) == [("unsubscribe", "ETH"), ("subscribe", "ETH"), ("subscribe", "SOL")]
    assert not reg.resubscribe({"type": "trades", "coin": "ETH"})  # waiting for its ack
    reg.on_ack({"type": "trades", "coin": "ETH"})
    reg.on_ack({"type": "trades", "coin": "SOL"})
    assert reg.all_acked and reg.acked_count() == 3


def test_given_unsubscribes_when_paced_then_they_take_tokens_like_subscribes() -> None:
    clock = ManualClock()
    reg = registry(clock, rate=1.0, burst=2.0)
    for coin in ("A", "B"):
        reg.desire({"type": "trades", "coin": coin})
    reg.start_connection()
    for _, sub in iter(reg.next_message, None):
        reg.on_ack(sub)
    reg.resubscribe({"type": "trades", "coin": "A"})
    reg.resubscribe({"type": "trades", "coin": "B"})
    assert reg.next_message() is None  # the burst went on the first two subscribes
    clock.advance(1.0)
    assert len(messages(reg)) == 1
    assert reg.send_wait_s() == 1.0
