"""Which coins hyperwatch knows, so an alert on a coin it will never see is refused.

First what the system has market data for: the ingester's latest-value hashes
(``keys.LATEST_MIDS`` / ``keys.LATEST_CONTEXTS``) and the alert workers' shared state. Only when
Redis knows no coin at all (nothing ingested yet) is the exchange asked: ``POST
{HL_INFO_URL} {"type": "meta"}``, listed perps only. Neither available → :class:`CoinsUnknown`
(the caller refuses rather than guessing).
"""

from __future__ import annotations

import httpx
import redis

from domain.alerts.shared_state import seen_key
from runtime import keys
from runtime.hyperliquid.universe import InfoUnavailable, fetch_universe
from settings import Settings


class CoinsUnknown(Exception):
    """Neither Redis nor the exchange could say which coins exist; ``str()`` says why."""


def redis_coins(client: redis.Redis) -> set[str]:
    pipe = client.pipeline(transaction=False)
    for key in (
        keys.LATEST_MIDS.name(),
        keys.LATEST_CONTEXTS.name(),
        seen_key("mids"),
        seen_key("asset_contexts"),
    ):
        pipe.hkeys(key)
    return {k.decode() for keys in pipe.execute() for k in keys}


def known_coins(settings: Settings, client: redis.Redis, timeout_s: float = 5.0) -> set[str]:
    """The coins alerts may name (see module)."""
    coins = redis_coins(client)
    if coins:
        return coins
    try:
        with httpx.Client(timeout=timeout_s) as http:
            return set(fetch_universe(http, settings.hl_info_url).listed)
    except InfoUnavailable as exc:
        raise CoinsUnknown(
            f"no market data in Redis yet and the exchange's coin list is unavailable ({exc})"
        ) from None
