"""Which tracked wallets the ingesters follow over WebSocket, and which are polled over REST.

Tracked wallets are ``TRACKED_WALLETS`` (settings) and the database's tracked wallets
(``hyperwatch wallets track``). The exchange follows at most 10 users per IP over
WebSocket (reference §1.6): each ingester shard subscribes to the first ``WS_USER_LIMIT``
of *its* share of ``TRACKED_WALLETS`` (a shard's share: CRC-32 of the lowercased address
modulo the shard count, the same on every host). Every other tracked wallet is polled
over REST by the one position poller (``tasks.maintenance.positions_poll``).

The poller runs in a worker, which knows the shard *count* from its own ``INGEST_SHARD``
(any index: ``0/4`` counts as 4 shards). A worker left at the default ``0/1`` while the
ingesters run 4 shards counts only shard 0's WebSocket wallets as followed and polls the
other shards' ones too: wasted budget, never a wallet left out. The other mismatch (the
worker counting more shards than run) would leave wallets unpolled: keep the count the
same everywhere.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

from settings import Settings


def shard_of(name: str, count: int) -> int:
    """The shard of a coin or (lowercased) wallet among ``count``: CRC-32 of its UTF-8 bytes."""
    return zlib.crc32(name.encode("utf-8")) % count


def shard_wallets(wallets: Iterable[str], shard: tuple[int, int]) -> list[str]:
    """The wallets of shard ``(i, N)``, lowercased (addresses are case-insensitive), in order."""
    index, count = shard
    lowered = [w.lower() for w in wallets]
    return [w for w in lowered if count == 1 or shard_of(w, count) == index]


def websocket_wallets(tracked: Sequence[str], ws_user_limit: int, shard_count: int) -> set[str]:
    """Every wallet some shard's ingester follows over WebSocket."""
    out: set[str] = set()
    for index in range(shard_count):
        out.update(shard_wallets(tracked, (index, shard_count))[:ws_user_limit])
    return out


def tracked_wallets(settings: Settings, database_wallets: Iterable[str]) -> list[str]:
    """``TRACKED_WALLETS`` then the database's wallets, lowercased, each once, in order."""
    return list(dict.fromkeys(w.lower() for w in [*settings.tracked_wallets, *database_wallets]))


def polled_wallets(settings: Settings, database_wallets: Iterable[str]) -> list[str]:
    """The tracked wallets no ingester follows over WebSocket: the REST poller's."""
    followed = websocket_wallets(
        settings.tracked_wallets, settings.ws_user_limit, settings.shard[1]
    )
    return [w for w in tracked_wallets(settings, database_wallets) if w not in followed]
