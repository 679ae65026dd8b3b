"""Which coins exist: the perp universe from REST ``/info`` ``meta``, and coin validation.

Subscribing to an unknown or mis-cased coin makes the exchange close the *whole* socket
without an error frame (reference §1.7), killing every other stream on it, and it would
do so again after every reconnect. So configured coins are checked against ``meta`` before
the first connect, and a bad one refuses the start (:class:`UnknownCoin`, one line naming
it). ``coins=all`` takes every listed perp, skipping delisted ones, names verbatim.
HIP-3 names (``dex:COIN``) are checked against that dex's ``meta``. Spot and outcome
names (``@107``, ``PURR/USDC``, ``#12090``) are refused: the ingester stores perps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class UnknownCoin(Exception):
    """A configured coin the exchange does not list; ``str()`` is one line naming it."""


class InfoUnavailable(Exception):
    """``/info`` could not be asked or answered nonsense; worth retrying later."""


@dataclass(frozen=True)
class Universe:
    listed: tuple[str, ...]
    delisted: frozenset[str]


def fetch_universe(client: httpx.Client, info_url: str, dex: str = "") -> Universe:
    """POST ``{"type": "meta"}`` (weight 20). Raises InfoUnavailable on any failure."""
    body: dict[str, Any] = {"type": "meta"}
    if dex:
        body["dex"] = dex
    try:
        response = client.post(info_url, json=body)
        response.raise_for_status()
        meta = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise InfoUnavailable(f"POST {info_url} meta{f' dex={dex}' if dex else ''}: {exc}") from exc
    return parse_meta(meta)


def parse_meta(meta: Any) -> Universe:
    if not isinstance(meta, dict) or not isinstance(meta.get("universe"), list):
        raise InfoUnavailable("meta reply has no universe list")
    listed: list[str] = []
    delisted: set[str] = set()
    for asset in meta["universe"]:
        name = asset.get("name") if isinstance(asset, dict) else None
        if not isinstance(name, str) or not name:
            continue
        if asset.get("isDelisted") is True:
            delisted.add(name)
        else:
            listed.append(name)
    return Universe(tuple(listed), frozenset(delisted))


def resolve_coins(coins: list[str], client: httpx.Client, info_url: str) -> list[str]:
    """The coins to subscribe: ``["all"]`` expanded, or the configured ones, validated."""
    if coins == ["all"]:
        return list(fetch_universe(client, info_url).listed)
    universes: dict[str, Universe] = {}
    for coin in coins:
        if coin.startswith("@") or coin.startswith("#") or "/" in coin:
            raise UnknownCoin(f"coin {coin!r} is a spot or outcome market; COINS takes perps only")
        dex = coin.split(":", 1)[0] if ":" in coin else ""
        if dex not in universes:
            universes[dex] = _universe_or_empty(client, info_url, dex)
        check_coin(coin, universes[dex])
    return list(dict.fromkeys(coins))


def _universe_or_empty(client: httpx.Client, info_url: str, dex: str) -> Universe:
    # An unknown HIP-3 dex answers with an error or null: its coins are then unknown.
    try:
        return fetch_universe(client, info_url, dex)
    except InfoUnavailable:
        if not dex:
            raise
        return Universe((), frozenset())


def check_coin(coin: str, universe: Universe) -> None:
    """Raise UnknownCoin unless ``coin`` is listed, exactly as spelled."""
    if coin in universe.listed:
        return
    if coin in universe.delisted:
        raise UnknownCoin(f"coin {coin!r} is delisted on Hyperliquid; remove it from COINS")
    folded = {name.lower(): name for name in universe.listed}
    hint = folded.get(coin.lower())
    if hint is not None:
        raise UnknownCoin(
            f"unknown coin {coin!r} in COINS: names are case-sensitive, did you mean {hint!r}?"
        )
    raise UnknownCoin(f"unknown coin {coin!r} in COINS: not in Hyperliquid's perp universe")
