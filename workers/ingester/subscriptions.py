"""The desired-state subscription registry and its per-connection progress.

The registry holds what we *want* subscribed; a connection never remembers subscriptions
on its own. After every (re)connect :meth:`SubscriptionRegistry.start_connection` queues
all of them again, and :meth:`next_message` releases them under the token bucket shared by
every connection of the process (the exchange counts every message sent across
connections, reference §1.6). While a socket lives, :meth:`desire` and :meth:`undesire`
add and drop subscriptions on it (a coin listed or delisted), and :meth:`resubscribe`
sends ``unsubscribe`` then ``subscribe`` for one stream that went silent; both kinds of
message go through the same bucket, in order.

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
_ALREADY_GONE = "Already unsubscribed: "
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
ALL_MIDS: Subscription = {"type": "allMids"}


def sub_id(sub: Subscription) -> str:
    """A stable identity for a subscription (key order does not matter)."""
    return orjson.dumps(sub, option=orjson.OPT_SORT_KEYS).decode()


def echo_matches(sent: Subscription, echo: Any) -> bool:
    """True when ``echo`` carries every key of ``sent`` with an equal value."""
    if not isinstance(echo, dict):
        return False
    return all(k in echo and echo[k] == v for k, v in sent.items())


def subscribe_message(sub: Subscription, method: str = SUBSCRIBE) -> bytes:
    return orjson.dumps({"method": method, "subscription": sub})


def already_unsubscribed(message: str) -> bool:
    """The exchange's answer to unsubscribing what it no longer had (harmless)."""
    return message.startswith(_ALREADY_GONE)


class SubscriptionRegistry:
    """Desired subscriptions plus the current connection's progress. One owner thread."""

    def __init__(self, bucket: TokenBucket) -> None:
        self._bucket = bucket
        self._desired: dict[str, Subscription] = {}
        self._queue: list[tuple[str, str]] = []  # (method, key) to send, in order
        self._leaving: dict[str, Subscription] = {}  # unsubscribes queued: what to send
        self._pending: dict[str, Subscription] = {}
        self._acked: set[str] = set()

    def desire(self, sub: Subscription) -> None:
        """Add a subscription we want on every connection (idempotent)."""
        key = sub_id(sub)
        if key not in self._desired:
            self._desired[key] = dict(sub)
            self._queue.append((SUBSCRIBE, key))

    def undesire(self, sub: Subscription) -> bool:
        """Stop wanting ``sub``: unsubscribed on this socket if it was sent, never sent
        again. False if it was not desired."""
        key = sub_id(sub)
        stored = self._desired.pop(key, None)
        if stored is None:
            return False
        was_sent = key in self._pending or key in self._acked
        self._queue = [op for op in self._queue if op != (SUBSCRIBE, key)]
        self._pending.pop(key, None)
        self._acked.discard(key)
        if was_sent:
            self._leaving[key] = stored
            self._queue.append((UNSUBSCRIBE, key))
        return True

    def resubscribe(self, sub: Subscription) -> bool:
        """Unsubscribe and subscribe ``sub`` again on this socket, ahead of anything else
        queued (a silent stream is data missed now). False unless it is acknowledged."""
        key = sub_id(sub)
        if key not in self._acked:
            return False
        self._acked.discard(key)
        self._leaving[key] = self._desired[key]
        self._queue[0:0] = [(UNSUBSCRIBE, key), (SUBSCRIBE, key)]
        return True

    @property
    def desired(self) -> list[Subscription]:
        return list(self._desired.values())

    def start_connection(self) -> None:
        """A new socket: nothing is subscribed on it; everything is to be sent again."""
        self._queue = [(SUBSCRIBE, key) for key in self._desired]
        self._leaving.clear()
        self._pending.clear()
        self._acked.clear()

    def next_message(self) -> tuple[str, Subscription] | None:
        """The next (method, subscription) to send if the bucket allows it now, else None."""
        if not self._queue or not self._bucket.try_take():
            return None
        method, key = self._queue.pop(0)
        if method == UNSUBSCRIBE:
            return method, self._leaving.pop(key)
        sub = self._desired[key]
        self._pending[key] = sub
        return method, sub

    def next_to_send(self) -> Subscription | None:
        """The subscription of :meth:`next_message` (whichever its method), or None."""
        message = self.next_message()
        return None if message is None else message[1]

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


def coin_subscriptions(coin: str) -> list[Subscription]:
    """A coin's streams; always on one socket (see ``planner``)."""
    return [{"type": "trades", "coin": coin}, {"type": "activeAssetCtx", "coin": coin}]


def user_subscriptions(wallet: str) -> list[Subscription]:
    return [{"type": "clearinghouseState", "user": wallet}, {"type": "userFills", "user": wallet}]


def desired_subscriptions(coins: list[str], ws_wallets: list[str]) -> list[Subscription]:
    """What the ingester keeps subscribed: mids, trades + context per coin, per WS wallet
    positions and fills. Wallets beyond the WS user limit are polled over REST instead."""
    subs: list[Subscription] = [dict(ALL_MIDS)]
    for coin in coins:
        subs.extend(coin_subscriptions(coin))
    for wallet in ws_wallets:
        subs.extend(user_subscriptions(wallet))
    return subs
