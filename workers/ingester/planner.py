"""Which coins and wallets this ingester takes (its shard), and how they spread over sockets.

Pure functions of their inputs; ``hyperwatch ingest --plan`` prints what they decide and
the ingester runs it.

**Shards.** ``INGEST_SHARD=i/N`` gives this ingester the coins, and the tracked wallets,
whose name hashes to ``i`` modulo ``N``. The hash is CRC-32 of the UTF-8 name (wallets
lowercased first): the same on every host, process and Python version, unlike ``hash()``,
which is salted per process, so shards started separately never overlap nor miss a coin.
A coin listed later lands in the same shard wherever it is computed.

**Plan.** The exchange's limits are per IP (reference §1.6): 10 sockets, 1,000
subscriptions, 10 distinct users in user streams, 2,000 messages a minute sent. A plan
stays within :data:`HEADROOM` of the first, second and fourth: a socket being replaced
still counts for a moment, a reconnect burst resubscribes everything, and another client
on the same address (an operator's shell, a second ingester during a deploy) needs room.
Users get no headroom: the count is exact, the setting ``WS_USER_LIMIT`` already caps it,
and the wallets beyond it are polled over REST. Subscriptions are spread evenly over as
few sockets as ``INGEST_SUBSCRIPTIONS_PER_CONNECTION`` allows — one when everything fits,
so a small configuration runs exactly as before — in order: ``allMids`` once on the first,
then per coin ``trades`` + ``activeAssetCtx`` (always on the same socket: a coin's context
tells whether its quiet ``trades`` stream is alive), then per WebSocket wallet
``clearinghouseState`` + ``userFills``. What does not fit raises :class:`PlanError`, one
line naming the quantity, the limit and the setting to change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

# The wallet split lives in runtime: the workers' position poller must know which wallets the
# ingesters follow over WebSocket (runtime.wallets).
from runtime.wallets import shard_of
from runtime.wallets import shard_wallets as shard_wallets
from workers.ingester.subscriptions import (
    ALL_MIDS,
    Subscription,
    coin_subscriptions,
    user_subscriptions,
)

# The exchange's per-IP limits (reference §1.6).
MAX_CONNECTIONS: Final = 10
MAX_SUBSCRIPTIONS: Final = 1000
MAX_USERS: Final = 10
MAX_MESSAGES_PER_MINUTE: Final = 2000
HEADROOM: Final = 0.8  # plan at most this share of the connection, subscription, message caps
PLANNED_MAX_CONNECTIONS: Final = int(MAX_CONNECTIONS * HEADROOM)
PLANNED_MAX_SUBSCRIPTIONS: Final = int(MAX_SUBSCRIPTIONS * HEADROOM)
PLANNED_MAX_MESSAGES_PER_MINUTE: Final = int(MAX_MESSAGES_PER_MINUTE * HEADROOM)
PER_COIN: Final = 2  # trades + activeAssetCtx
PER_USER: Final = 2  # clearinghouseState + userFills


class PlanError(Exception):
    """The requested coins and wallets do not fit the per-IP limits; ``str()`` is one line."""


def shard_coins(coins: Iterable[str], shard: tuple[int, int]) -> list[str]:
    """The coins of shard ``(i, N)``, in the given order."""
    index, count = shard
    return [c for c in coins if count == 1 or shard_of(c, count) == index]


@dataclass(frozen=True)
class PlannedConnection:
    index: int
    all_mids: bool
    coins: tuple[str, ...]
    users: tuple[str, ...]

    @property
    def subscriptions(self) -> list[Subscription]:
        subs: list[Subscription] = [dict(ALL_MIDS)] if self.all_mids else []
        for coin in self.coins:
            subs.extend(coin_subscriptions(coin))
        for user in self.users:
            subs.extend(user_subscriptions(user))
        return subs

    @property
    def count(self) -> int:
        return int(self.all_mids) + PER_COIN * len(self.coins) + PER_USER * len(self.users)


@dataclass(frozen=True)
class Plan:
    shard: tuple[int, int]
    connections: tuple[PlannedConnection, ...]
    per_connection: int
    polled: tuple[str, ...] = ()
    pings_per_minute: int = 0
    subscribe_messages_per_minute: int = MAX_MESSAGES_PER_MINUTE

    @property
    def coins(self) -> list[str]:
        return [c for conn in self.connections for c in conn.coins]

    @property
    def users(self) -> list[str]:
        return [u for conn in self.connections for u in conn.users]

    @property
    def subscriptions(self) -> int:
        return sum(conn.count for conn in self.connections)

    @property
    def messages_per_minute(self) -> int:
        """The busiest minute: every socket resubscribing (at most the pacing budget) plus
        the pings of a minute."""
        return min(
            self.subscriptions, self.subscribe_messages_per_minute
        ) + self.pings_per_minute * len(self.connections)

    def usage(self) -> dict[str, dict[str, int]]:
        """Each per-IP quantity: planned, the most a plan may use, the exchange's limit."""
        return {
            "connections": _use(len(self.connections), PLANNED_MAX_CONNECTIONS, MAX_CONNECTIONS),
            "subscriptions": _use(self.subscriptions, PLANNED_MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTIONS),
            "users": _use(len(self.users), MAX_USERS, MAX_USERS),
            "messages_per_minute": _use(
                self.messages_per_minute, PLANNED_MAX_MESSAGES_PER_MINUTE, MAX_MESSAGES_PER_MINUTE
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "coins": len(self.coins),
            "ws_users": len(self.users),
            "polled_users": len(self.polled),
            "subscriptions": self.subscriptions,
            "subscriptions_per_connection": self.per_connection,
            "connections": [
                {
                    "index": conn.index,
                    "subscriptions": conn.count,
                    "all_mids": conn.all_mids,
                    "coins": list(conn.coins),
                    "users": list(conn.users),
                }
                for conn in self.connections
            ],
            "polled": list(self.polled),
            "limits": self.usage(),
        }


def _use(planned: int, allowed: int, limit: int) -> dict[str, int]:
    return {"planned": planned, "allowed": allowed, "exchange_limit": limit}


def plan_subscriptions(
    coins: Iterable[str],
    ws_users: Iterable[str],
    per_connection: int,
    *,
    shard: tuple[int, int] = (0, 1),
    polled: Iterable[str] = (),
    ping_interval_s: float | None = None,
    subscribe_messages_per_minute: int = MAX_MESSAGES_PER_MINUTE,
) -> Plan:
    """Spread the shard's subscriptions over sockets (see the module doc); PlanError when
    they cannot fit. ``coins`` and ``ws_users`` are the shard's, already selected."""
    if per_connection < PER_COIN:
        raise PlanError(f"INGEST_SUBSCRIPTIONS_PER_CONNECTION must be at least {PER_COIN}")
    coin_list = list(dict.fromkeys(coins))
    user_list = list(dict.fromkeys(ws_users))
    if len(user_list) > MAX_USERS:
        raise PlanError(
            f"{len(user_list)} wallets on WebSocket exceed the exchange's {MAX_USERS} distinct "
            f"users per IP: lower WS_USER_LIMIT to {MAX_USERS} (the rest are polled over REST)"
        )
    total = 1 + PER_COIN * len(coin_list) + PER_USER * len(user_list)
    if total > PLANNED_MAX_SUBSCRIPTIONS:
        raise PlanError(
            f"{total} subscriptions needed ({len(coin_list)} coins x {PER_COIN} + "
            f"{len(user_list)} users x {PER_USER} + allMids) exceed the {PLANNED_MAX_SUBSCRIPTIONS} "
            f"planned per IP ({HEADROOM:.0%} of the exchange's {MAX_SUBSCRIPTIONS}): "
            "list fewer COINS or split them with INGEST_SHARD"
        )
    units: list[tuple[str, str]] = [("mids", "")]
    units += [("coin", c) for c in coin_list]
    units += [("user", u) for u in user_list]
    layout = _layout(units, total, per_connection)
    if len(layout) > PLANNED_MAX_CONNECTIONS:
        raise PlanError(
            f"{total} subscriptions at most {per_connection} a socket "
            f"(INGEST_SUBSCRIPTIONS_PER_CONNECTION) need {len(layout)} sockets, more than the "
            f"{PLANNED_MAX_CONNECTIONS} planned per IP ({HEADROOM:.0%} of the exchange's "
            f"{MAX_CONNECTIONS}): raise INGEST_SUBSCRIPTIONS_PER_CONNECTION or split with INGEST_SHARD"
        )
    connections = tuple(
        PlannedConnection(
            index,
            any(kind == "mids" for kind, _ in group),
            tuple(name for kind, name in group if kind == "coin"),
            tuple(name for kind, name in group if kind == "user"),
        )
        for index, group in enumerate(layout)
    )
    pings = math.ceil(60.0 / ping_interval_s) if ping_interval_s else 0
    plan = Plan(
        shard, connections, per_connection, tuple(polled), pings, subscribe_messages_per_minute
    )
    if plan.messages_per_minute > PLANNED_MAX_MESSAGES_PER_MINUTE:
        raise PlanError(
            f"{plan.messages_per_minute} messages a minute at worst ({plan.subscriptions} "
            f"resubscribes + {pings} pings x {len(connections)} sockets) exceed the "
            f"{PLANNED_MAX_MESSAGES_PER_MINUTE} planned per IP ({HEADROOM:.0%} of the exchange's "
            f"{MAX_MESSAGES_PER_MINUTE}): raise PING_INTERVAL_S or lower SUBSCRIBE_MESSAGES_PER_MINUTE"
        )
    return plan


def _pack(units: list[tuple[str, str]], target: int) -> list[list[tuple[str, str]]]:
    """Consecutive groups of units, a new group whenever the next unit would pass ``target``."""
    groups: list[list[tuple[str, str]]] = [[]]
    load = 0
    for unit in units:
        size = 1 if unit[0] == "mids" else PER_COIN
        if groups[-1] and load + size > target:
            groups.append([])
            load = 0
        groups[-1].append(unit)
        load += size
    return groups


def _layout(
    units: list[tuple[str, str]], total: int, per_connection: int
) -> list[list[tuple[str, str]]]:
    """As few sockets as filling each to the cap needs, then as even as the unit sizes
    allow: the smallest per-socket target that still packs into that many."""
    sockets = len(_pack(units, per_connection))
    for target in range(math.ceil(total / sockets), per_connection):
        groups = _pack(units, target)
        if len(groups) <= sockets:
            return groups
    return _pack(units, per_connection)


def place_coin(loads: dict[int, int], per_connection: int, total_cap: int) -> int | None:
    """The socket with the most room for one more coin (``loads``: subscriptions per socket
    index, lowest index on a tie), or None when none has room or the shard would exceed
    ``total_cap``."""
    if not loads or sum(loads.values()) + PER_COIN > total_cap:
        return None
    index, load = min(loads.items(), key=lambda item: (item[1], item[0]))
    return index if load + PER_COIN <= per_connection else None


@dataclass(frozen=True)
class ListingChanges:
    added: tuple[tuple[str, int], ...] = ()  # (coin, socket index)
    removed: tuple[tuple[str, int], ...] = ()
    unplaced: tuple[str, ...] = ()  # newly listed here, but no socket has room

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.unplaced)


class LivePlan:
    """A plan as listings change it while the ingester runs: which socket holds each coin
    and how many subscriptions each socket carries. Sockets are never added while running
    (that is a restart's job, with a fresh plan); a new coin goes to the socket with the
    most room, within ``INGEST_SUBSCRIPTIONS_PER_CONNECTION`` and the planned per-IP total.
    One owner thread (the meta refresher); :attr:`loads` may be read by others."""

    def __init__(self, plan: Plan) -> None:
        self.per_connection = plan.per_connection
        self.where: dict[str, int] = {
            coin: conn.index for conn in plan.connections for coin in conn.coins
        }
        self.loads: dict[int, int] = {conn.index: conn.count for conn in plan.connections}
        self.unplaced: set[str] = set()

    @property
    def coins(self) -> list[str]:
        return list(self.where)

    def update(self, listed: Iterable[str]) -> ListingChanges:
        """The shard's coins as meta lists them now → what to subscribe and drop where."""
        wanted = list(dict.fromkeys(listed))
        keep = set(wanted)
        removed = tuple((c, i) for c, i in self.where.items() if c not in keep)
        for coin, index in removed:
            del self.where[coin]
            self.loads[index] -= PER_COIN
        self.unplaced &= keep
        added: list[tuple[str, int]] = []
        unplaced: list[str] = []
        for coin in wanted:
            if coin in self.where:
                continue
            place = place_coin(self.loads, self.per_connection, PLANNED_MAX_SUBSCRIPTIONS)
            if place is None:
                if coin not in self.unplaced:
                    self.unplaced.add(coin)
                    unplaced.append(coin)
                continue
            self.unplaced.discard(coin)
            self.where[coin] = place
            self.loads[place] += PER_COIN
            added.append((coin, place))
        return ListingChanges(tuple(added), removed, tuple(unplaced))
