"""The desired-state subscription registry and its per-connection progress.

The registry holds what we *want* subscribed; a connection never remembers subscriptions
on its own. After every (re)connect :meth:`SubscriptionRegistry.start_connection` queues
all of them again, and :meth:`next_to_send` releases them under the shared token bucket
(the exchange counts every message sent across connections, reference §1.6).

Acks echo the subscription normalised with default keys (``nSigFigs: null``, ``fast:
false``), so an ack matches a sent subscription when every key we sent appears in the echo
with the same value (:func:`echo_matches`). ``Already subscribed: {...}`` errors say the
same thing as an ack and are treated as one.
"""

from __future__ import annotations

from typing import Any

import orjson

from workers.ingester.pacing import TokenBucket

Subscription = dict[str, Any]

_ALREADY = "Already subscribed: "


def sub_id(sub: Subscription) -> str:
    """A stable identity for a subscription (key order does not matter)."""
    return orjson.dumps(sub, option=orjson.OPT_SORT_KEYS).decode()


def echo_matches(sent: Subscription, echo: Any) -> bool:
    """True when ``echo`` carries every key of ``sent`` with an equal value."""
    if not isinstance(echo, dict):
        return False
    return all(k in echo and echo[k] == v for k, v in sent.items())


def subscribe_message(sub: Subscription) -> bytes:
    return orjson.dumps({"method": "subscribe", "subscription": sub})


class SubscriptionRegistry:
    """Desired subscriptions plus the current connection's progress. One owner thread."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket
        self._desired: dict[str, Subscription] = {}
        self._queue: list[str] = []
        self._pending: dict[str, Subscription] = {}
        self._acked: set[str] = set()

    def desire(self, sub: Subscription) -> None:
        """Add a subscription we want on every connection (idempotent)."""
        key = sub_id(sub)
        if key not in self._desired:
            self._desired[key] = dict(sub)
            self._queue.append(key)

    @property
    def desired(self) -> list[Subscription]:
        return list(self._desired.values())

    def start_connection(self) -> None:
        """A new socket: nothing is subscribed on it; everything is to be sent again."""
        self._queue = list(self._desired)
        self._pending.clear()
        self._acked.clear()

    def next_to_send(self) -> Subscription | None:
        """The next subscription to send if the bucket allows it now, else None."""
        if not self._queue or not self._bucket.try_take():
            return None
        key = self._queue.pop(0)
        sub = self._desired[key]
        self._pending[key] = sub
        return sub

    def send_wait_s(self) -> float | None:
        """Seconds until the next send is allowed; None when nothing is queued."""
        return self._bucket.wait_s() if self._queue else None

    def on_ack(self, echo: Any) -> Subscription | None:
        """Match a ``subscriptionResponse`` echo to a pending subscription."""
        for key, sub in self._pending.items():
            if echo_matches(sub, echo):
                del self._pending[key]
                self._acked.add(key)
                return sub
        return None

    def on_error(self, message: str) -> Subscription | None:
        """An error frame; ``Already subscribed`` counts as the ack it stands for."""
        if not message.startswith(_ALREADY):
            return None
        try:
            echo = orjson.loads(message[len(_ALREADY) :])
        except orjson.JSONDecodeError:
            return None
        return self.on_ack(echo)

    @property
    def all_acked(self) -> bool:
        return not self._queue and not self._pending and len(self._acked) == len(self._desired)

    def pending(self) -> list[Subscription]:
        """Sent and not yet acknowledged: the suspects when a socket dies right after."""
        return list(self._pending.values())

    def acked_count(self) -> int:
        return len(self._acked)

    def is_acked(self, sub: Subscription) -> bool:
        return sub_id(sub) in self._acked


def desired_subscriptions(coins: list[str], ws_wallets: list[str]) -> list[Subscription]:
    """What the ingester keeps subscribed: mids, trades + context per coin, per WS wallet
    positions and fills. Wallets beyond the WS user limit are polled over REST instead."""
    subs: list[Subscription] = [{"type": "allMids"}]
    for coin in coins:
        subs.append({"type": "trades", "coin": coin})
        subs.append({"type": "activeAssetCtx", "coin": coin})
    for wallet in ws_wallets:
        subs.append({"type": "clearinghouseState", "user": wallet})
        subs.append({"type": "userFills", "user": wallet})
    return subs
