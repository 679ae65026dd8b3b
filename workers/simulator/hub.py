"""Who is subscribed to what, the exchange's per-IP limits, and fan-out of data frames.

A *topic* names a data stream ("trades:BTC", "ctx:ETH", "allMids", "chs:0x…", "fills:0x…").
A connection subscribed to a topic through more than one subscription (``userFills`` with
and without ``aggregateByTime``) gets each frame once. Limits follow reference §1.6 and are
counted per client IP across its connections: subscriptions (1000), distinct users in user
subscriptions (10), messages sent to the server per minute (2000); refusals are the
exchange's error strings.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from runtime.clock import Clock
from workers.simulator.connection import Connection
from workers.simulator.protocol import Subscription, already_subscribed, already_unsubscribed, error
from workers.simulator.stats import Stats


@dataclass(frozen=True)
class Limits:
    max_subscriptions: int = 1000
    max_users: int = 10
    max_messages_per_minute: int = 2000  # 0 disables


@dataclass
class _IpBudget:
    subscriptions: int = 0
    users: Counter[str] = field(default_factory=Counter)
    messages: deque[float] = field(default_factory=deque)
    connections: int = 0


class Hub:
    """Subscription registry and fan-out. Owned by the server's event loop."""

    def __init__(self, stats: Stats, limits: Limits, clock: Clock) -> None:
        self.stats = stats
        self.limits = limits
        self.connections: dict[int, Connection] = {}
        self._clock = clock
        self._topics: dict[str, set[Connection]] = {}
        # The silence fault: topic → subscribers it is no longer pushed to.
        self._silenced: dict[str, set[Connection]] = {}
        self._ips: dict[str, _IpBudget] = {}
        # Called before every data frame a connection is sent (the malformed-rate fault).
        self.before_data: Callable[[Connection, bytes], None] | None = None

    # --- connections -------------------------------------------------------------------

    def add(self, conn: Connection) -> None:
        self.connections[conn.id] = conn
        self._ips.setdefault(conn.peer, _IpBudget()).connections += 1
        self.stats.connections_open = len(self.connections)
        self.stats.connections_total += 1

    def remove(self, conn: Connection) -> None:
        if self.connections.pop(conn.id, None) is None:
            return
        for subscription in list(conn.subscriptions.values()):
            self._forget(conn, subscription)
        budget = self._ips.get(conn.peer)
        if budget is not None:
            budget.connections -= 1
            if budget.connections <= 0:
                del self._ips[conn.peer]
        self.stats.connections_open = len(self.connections)

    def admit_message(self, conn: Connection) -> bytes | None:
        """Count one client message; an error frame when the per-IP minute budget is spent."""
        limit = self.limits.max_messages_per_minute
        if not limit:
            return None
        window = self._ips.setdefault(conn.peer, _IpBudget()).messages
        now = self._clock.monotonic()
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= limit:
            return error(f"Cannot send more than {limit} messages per minute.")
        window.append(now)
        return None

    # --- subscriptions -----------------------------------------------------------------

    def subscribe(self, conn: Connection, subscription: Subscription) -> bytes | None:
        """Register; None on success, else the error frame to send (socket stays open)."""
        if subscription.key in conn.subscriptions:
            return already_subscribed(subscription)
        budget = self._ips.setdefault(conn.peer, _IpBudget())
        if budget.subscriptions >= self.limits.max_subscriptions:
            return error(f"Cannot subscribe to more than {self.limits.max_subscriptions} channels.")
        user = subscription.user
        if (
            user is not None
            and user not in budget.users
            and len(budget.users) >= self.limits.max_users
        ):
            return error(f"Cannot track more than {self.limits.max_users} total users.")
        conn.subscriptions[subscription.key] = subscription
        budget.subscriptions += 1
        if user is not None:
            budget.users[user] += 1
        conn.topics[subscription.topic] += 1
        self._topics.setdefault(subscription.topic, set()).add(conn)
        self.stats.subscriptions += 1
        return None

    def unsubscribe(self, conn: Connection, subscription: Subscription) -> bytes | None:
        if subscription.key not in conn.subscriptions:
            return already_unsubscribed(subscription)
        self._forget(conn, conn.subscriptions[subscription.key])
        return None

    def _forget(self, conn: Connection, subscription: Subscription) -> None:
        del conn.subscriptions[subscription.key]
        budget = self._ips.get(conn.peer)
        if budget is not None:
            budget.subscriptions -= 1
            if subscription.user is not None:
                budget.users[subscription.user] -= 1
                if budget.users[subscription.user] <= 0:
                    del budget.users[subscription.user]
        conn.topics[subscription.topic] -= 1
        if conn.topics[subscription.topic] <= 0:
            del conn.topics[subscription.topic]
            subscribers = self._topics.get(subscription.topic)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self._topics[subscription.topic]
            silenced = self._silenced.get(subscription.topic)
            if silenced is not None:
                silenced.discard(conn)  # unsubscribing ends the silence fault
                if not silenced:
                    del self._silenced[subscription.topic]
        self.stats.subscriptions -= 1

    def silence(self, topic: str) -> int:
        """Stop pushing ``topic`` to its current subscribers (until they unsubscribe it)."""
        subscribers = self._topics.get(topic) or set()
        if subscribers:
            self._silenced.setdefault(topic, set()).update(subscribers)
        return len(subscribers)

    # --- fan-out -----------------------------------------------------------------------

    def subscribers(self, topic: str) -> set[Connection]:
        return self._topics.get(topic) or set()

    def topics_with_prefix(self, prefix: str) -> list[str]:
        return [topic for topic in self._topics if topic.startswith(prefix)]

    def has_subscribers(self, topic: str) -> bool:
        return topic in self._topics

    def publish(self, topic: str, frame: bytes, trades: bool = False) -> int:
        """Send one pre-built data frame to every subscriber of ``topic``; how many got it."""
        subscribers = self._topics.get(topic)
        if not subscribers:
            return 0
        if self._silenced:
            silenced = self._silenced.get(topic)
            if silenced:
                subscribers = subscribers - silenced
        before = self.before_data
        sent = 0
        for conn in tuple(subscribers):
            if before is not None:
                before(conn, frame)
            if conn.send(frame):
                sent += 1
                if trades:
                    conn.last_trades_frame = frame
        return sent
