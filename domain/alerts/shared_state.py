"""The market view every alert worker shares, kept in Redis.

Why shared: the ingester's batches are spread over every worker consuming ``alerts``, so a
worker sees only some of them. Price and funding thresholds can be judged from a batch
alone, but a move within N minutes needs every point of the window, a liquidation distance
needs the latest position *and* the latest mark (they arrive in different batches) and
stale data needs the time of the last event whichever worker got it. So every worker
applies its batch here first and reads the rest from here; all of them then agree.

Keys (``<stream>`` is ``mids``, ``asset_contexts`` or ``positions``; a position's field is
``<wallet>|<coin>``, every other field is the coin):

- ``keys.ALERTS_SEEN`` hash, field → ms of the newest event applied. The ordering
  guard: an event older than this is skipped, atomically (one Lua script per batch), so two
  workers applying batches out of order never move a coin back in time. Also what
  ``stale_data`` measures silence from.
- ``keys.ALERTS_VALUE`` hash, field → that newest value: the mid's price string, the
  asset context's or position's wire JSON (``events.event_to_wire``). A position that
  replaces an older one comes back with the one it replaced, read in the same atomic call
  (:meth:`SharedMarket.apply_replacing`): each pair of consecutive snapshots is seen by
  the worker that applied it, which judges the change between them
  (``wallet_position_change``).
  A state lists open positions only, so a coin's first snapshot has nothing to replace;
  the seen hash also keeps, per wallet (field ``<wallet>|``), the time its positions were
  first seen: a coin first appearing *after* that was flat in the wallet's earlier states
  (every complete state lists every open position, and closes are sent as flat ones), so it
  comes back as replacing a flat position — an open. A coin already in the wallet's first
  state seen is its baseline: held since before hyperwatch looked, not opened.
- ``keys.ALERTS_REPLACED`` hash (positions), field → what the newest value replaced (its
  JSON, or ``flat``): a snapshot applied again at the same time (a retried task, a
  redelivered batch, a second ingester) comes back with the same pair, so a change is
  never lost to a failure after the apply; firing it twice is the database claim's to
  refuse (an event no newer than the last firing).
- ``keys.ALERTS_HISTORY`` sorted set, score = bucket start (ms), member
  ``"<start>|<low>|<high>"``: the low and high of the mid (or open interest) in each bucket.
  Recorded only for coins that have a windowed alert (``price_move_pct`` /
  ``oi_change_pct``). Two tiers: ``fine`` (1 s buckets, one hour kept) serves windows up to
  an hour exactly; ``coarse`` (1 min buckets, a day kept) serves longer windows, made of
  the whole minutes that start inside them (so up to a minute shorter than asked). Lua
  compares the values as doubles only to pick the low and the high; the stored strings
  are the exact decimals sent, and comparisons with thresholds stay Decimal.
- ``keys.ALERTS_STARTED``: when this shared view began; a coin never seen since has been
  silent since then (what ``stale_data`` reports for it).

Only the latest bucket of a series ever changes (older events are skipped), so a worker
mirrors the history locally (:class:`HistoryMirror`) and fetches just the buckets from its
last synced one onward on each use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import redis

from domain.alerts.market_state import MarketState
from domain.alerts.view import Series, Stream, WindowRange
from events import AssetContext, Event, Mid, Position, event_from_wire, event_to_wire
from runtime import keys
from runtime.hyperliquid.positions import flat_position

STARTED_KEY: Final = keys.ALERTS_STARTED.name()
# Streams whose events alerts read, as ``events.KIND_OF`` names them.
ALERT_STREAMS: Final = ("mids", "asset_contexts", "positions")


def seen_key(stream: str) -> str:
    return keys.ALERTS_SEEN.name(stream=stream)


def value_key(stream: str) -> str:
    return keys.ALERTS_VALUE.name(stream=stream)


@dataclass(frozen=True, slots=True)
class Tier:
    name: str
    bucket_ms: int
    span_ms: int

    def key(self, series: Series, coin: str) -> str:
        return keys.ALERTS_HISTORY.name(tier=self.name, series=series, coin=coin)


FINE: Final = Tier("fine", 1_000, 3_600_000)
COARSE: Final = Tier("coarse", 60_000, 86_400_000)


def tiers_for(window_ms: int) -> tuple[Tier, ...]:
    """The tiers to record for windows up to ``window_ms``."""
    return (FINE,) if window_ms <= FINE.span_ms else (FINE, COARSE)


def tier_for(window_ms: int) -> Tier:
    """The tier a window of ``window_ms`` is read from."""
    return FINE if window_ms <= FINE.span_ms else COARSE


def field_of(event: Mid | AssetContext | Position) -> str:
    if isinstance(event, Position):
        return f"{event.user.lower()}|{event.coin}"
    return event.coin


def _series_value(event: Mid | AssetContext) -> Decimal:
    return event.px if isinstance(event, Mid) else event.open_interest


# ARGV[1]: {"seen": key, "val": key, "rep": key, "items": [{"f", "t", "v", "p": [[t, x]...],
# "h": [[key, bucket_ms, span_ms]...], "r": "<wallet>|"}]}. Returns per item 0 (skipped as
# older) or 1 (applied); an item with "r" (a position) that replaced an older value returns
# that value instead of 1, or "flat" when it is its field's first value but its wallet was
# seen before; re-applied at the same time, what it replaced the first time.
_APPLY: Final = """
local spec = cjson.decode(ARGV[1])
local function merge(key, size, span, t, x)
  local start = t - (t % size)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local xv = tonumber(x)
  if last[1] ~= nil and tonumber(last[2]) == start then
    local s, lo, hi = string.match(last[1], '^([^|]+)|([^|]+)|([^|]+)$')
    local nlo, nhi = lo, hi
    if xv < tonumber(lo) then nlo = x end
    if xv > tonumber(hi) then nhi = x end
    if nlo ~= lo or nhi ~= hi then
      redis.call('ZREM', key, last[1])
      redis.call('ZADD', key, start, s .. '|' .. nlo .. '|' .. nhi)
    end
  elseif last[1] == nil or tonumber(last[2]) < start then
    redis.call('ZADD', key, start, string.format('%d', start) .. '|' .. x .. '|' .. x)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%d', start - span))
    redis.call('PEXPIRE', key, span * 2)
  end
end
local out = {}
for i, item in ipairs(spec.items) do
  local stored = redis.call('HGET', spec.seen, item.f)
  local t = tonumber(item.t)
  if stored and t < tonumber(stored) then
    out[i] = 0
  else
    local replaced = false
    if item.r then
      local first = redis.call('HGET', spec.seen, item.r)
      if stored and t == tonumber(stored) then
        replaced = redis.call('HGET', spec.rep, item.f)
      else
        if stored then
          replaced = redis.call('HGET', spec.val, item.f)
        elseif first and tonumber(first) < t then
          replaced = 'flat'
        end
        if replaced then
          redis.call('HSET', spec.rep, item.f, replaced)
        else
          redis.call('HDEL', spec.rep, item.f)
        end
      end
      if not first or t < tonumber(first) then redis.call('HSET', spec.seen, item.r, item.t) end
    end
    redis.call('HSET', spec.seen, item.f, item.t)
    redis.call('HSET', spec.val, item.f, item.v)
    if item.h then
      local floor = -1
      if stored then floor = tonumber(stored) end
      for _, tier in ipairs(item.h) do
        for _, p in ipairs(item.p) do
          local pt = tonumber(p[1])
          if pt >= floor then merge(tier[1], tonumber(tier[2]), tonumber(tier[3]), pt, p[2]) end
        end
      end
    end
    if replaced then out[i] = replaced else out[i] = 1 end
  end
end
return out
"""


@dataclass(slots=True)
class _Item:
    latest: Mid | AssetContext | Position
    points: list[tuple[int, Decimal]] = field(default_factory=list)


def _value(event: Mid | AssetContext | Position) -> str:
    if isinstance(event, Mid):
        return str(event.px)
    return json.dumps(event_to_wire(event), separators=(",", ":"))


def group_latest(
    events: Iterable[Mid | AssetContext | Position], history: Mapping[str, int]
) -> dict[str, _Item]:
    """Per field the newest event (the last of equal times) and, for coins in ``history``
    (coin → longest window in ms), every point in time order. Pure."""
    items: dict[str, _Item] = {}
    for event in events:
        key = field_of(event)
        item = items.get(key)
        if item is None:
            item = items[key] = _Item(latest=event)
        elif event.time >= item.latest.time:
            item.latest = event
        if event.coin in history and not isinstance(event, Position):
            item.points.append((event.time, _series_value(event)))
    for item in items.values():
        item.points.sort(key=lambda p: p[0])
    return items


def _replaced(latest: Mid | AssetContext | Position, flag: bytes | str) -> Position | None:
    text = flag.decode() if isinstance(flag, bytes) else flag
    if not isinstance(latest, Position):
        return None
    if text == "flat":
        return flat_position(latest, latest.time)
    replaced = event_from_wire(Position, json.loads(text))
    return replaced if isinstance(replaced, Position) else None


def series_of(stream: str) -> Series | None:
    """The series a stream's events carry history for (none for positions)."""
    return {"mids": Series.MID, "asset_contexts": Series.OPEN_INTEREST}.get(stream)


class SharedMarket:
    """The Redis side: apply a batch atomically, read what other batches left."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._apply = client.register_script(_APPLY)

    def apply(
        self,
        stream: str,
        events: Sequence[Mid | AssetContext | Position],
        history: Mapping[str, int] | None = None,
    ) -> list[Mid | AssetContext | Position]:
        """Apply a batch of one stream; returns the per-field newest events that were not
        older than what was stored (the ones to evaluate). ``history`` maps coin → longest
        window (ms) of its windowed alerts on this stream's series: those coins' points
        are recorded in the history tiers."""
        return [event for event, _ in self.apply_replacing(stream, events, history)]

    def apply_replacing(
        self,
        stream: str,
        events: Sequence[Mid | AssetContext | Position],
        history: Mapping[str, int] | None = None,
    ) -> list[tuple[Mid | AssetContext | Position, Position | None]]:
        """:meth:`apply`, pairing each applied event with, for positions, the older position
        it replaced — a flat one for a coin first seen after its wallet was; for a snapshot
        applied again at the same time, what it replaced the first time (see module) — or
        None: a wallet's first state, and other streams."""
        history = history or {}
        items = group_latest(events, history)
        if not items:
            return []
        series = series_of(stream)
        spec_items: list[dict[str, Any]] = []
        for key, item in items.items():
            entry: dict[str, Any] = {"f": key, "t": str(item.latest.time), "v": _value(item.latest)}
            window = history.get(item.latest.coin)
            if series is not None and window and item.points:
                entry["h"] = [
                    [tier.key(series, item.latest.coin), tier.bucket_ms, tier.span_ms]
                    for tier in tiers_for(window)
                ]
                entry["p"] = [[str(t), str(x)] for t, x in item.points]
            if isinstance(item.latest, Position):
                entry["r"] = f"{item.latest.user.lower()}|"
            spec_items.append(entry)
        spec = {
            "seen": seen_key(stream),
            "val": value_key(stream),
            "rep": keys.ALERTS_REPLACED.name(stream=stream),
            "items": spec_items,
        }
        flags = self._apply(args=[json.dumps(spec, separators=(",", ":"))])
        out: list[tuple[Mid | AssetContext | Position, Position | None]] = []
        for item, flag in zip(items.values(), flags, strict=True):
            if isinstance(flag, bytes | str):
                out.append((item.latest, _replaced(item.latest, flag)))
            elif int(flag):
                out.append((item.latest, None))
        return out

    def mark_started(self, now_ms: int) -> int:
        """Record when the shared view began (first caller wins); returns that time."""
        pipe = self.client.pipeline(transaction=False)
        pipe.set(STARTED_KEY, now_ms, nx=True)
        pipe.get(STARTED_KEY)
        _, raw = pipe.execute()
        return int(raw) if raw is not None else now_ms

    def started_ms(self, default: int) -> int:
        raw = self.client.get(STARTED_KEY)
        return int(raw) if raw is not None else default

    def contexts(self, coins: Iterable[str]) -> list[AssetContext]:
        return self._values("asset_contexts", AssetContext, list(coins))

    def positions(self, pairs: Iterable[tuple[str, str]]) -> list[Position]:
        fields = [f"{wallet.lower()}|{coin}" for wallet, coin in pairs]
        return self._values("positions", Position, fields)

    def mids(self, coins: Iterable[str]) -> list[Mid]:
        coins = list(dict.fromkeys(coins))
        if not coins:
            return []
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(value_key("mids"), coins)
        pipe.hmget(seen_key("mids"), coins)
        prices, times = pipe.execute()
        return [
            Mid(coin=coin, time=int(t), px=Decimal(p.decode()))
            for coin, p, t in zip(coins, prices, times, strict=True)
            if p is not None and t is not None
        ]

    def seen(self, stream: str, coins: Iterable[str]) -> dict[str, int]:
        """Ms of the newest applied event per coin (coins never seen are left out)."""
        coins = list(dict.fromkeys(coins))
        if not coins:
            return {}
        values = self.client.hmget(seen_key(stream), coins)
        return {c: int(v) for c, v in zip(coins, values, strict=True) if v is not None}

    def _values(self, stream: str, cls: type[Event], fields: list[str]) -> list[Any]:
        fields = list(dict.fromkeys(fields))
        if not fields:
            return []
        raw = self.client.hmget(value_key(stream), fields)
        return [event_from_wire(cls, json.loads(v)) for v in raw if v is not None]

    def history(self, requests: Sequence[tuple[str, int]]) -> list[list[bytes]]:
        """For each (history key, from bucket start) the members from that bucket on."""
        if not requests:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key, start in requests:
            pipe.zrangebyscore(key, start, "+inf")
        return list(pipe.execute())


class _Buckets:
    """One mirrored series tier: bucket starts ascending, lows and highs beside them."""

    __slots__ = ("highs", "lows", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.lows: list[Decimal] = []
        self.highs: list[Decimal] = []

    def replace_from(self, start: int, members: Iterable[bytes]) -> None:
        cut = 0
        while cut < len(self.starts) and self.starts[-1 - cut] >= start:
            cut += 1
        if cut:
            del self.starts[-cut:], self.lows[-cut:], self.highs[-cut:]
        for member in members:
            s, low, high = member.decode().split("|")
            self.starts.append(int(s))
            self.lows.append(Decimal(low))
            self.highs.append(Decimal(high))

    def trim(self, horizon: int) -> None:
        drop = 0
        while drop < len(self.starts) and self.starts[drop] < horizon:
            drop += 1
        if drop:
            del self.starts[:drop], self.lows[:drop], self.highs[:drop]

    def range(self, latest: Decimal, since_ms: int) -> WindowRange:
        """Exactly ``MarketState``'s window rule: whole buckets starting inside the window;
        covered when a bucket starts at or before the window's start."""
        low = high = latest
        covered = False
        for i in range(len(self.starts) - 1, -1, -1):
            start = self.starts[i]
            if start <= since_ms:
                covered = True
            if start < since_ms:
                break
            if self.lows[i] < low:
                low = self.lows[i]
            if self.highs[i] > high:
                high = self.highs[i]
        return WindowRange(latest=latest, low=low, high=high, covered=covered)


class HistoryMirror:
    """This worker's copy of the shared histories it has needed, synced incrementally."""

    def __init__(self) -> None:
        self._series: dict[str, _Buckets] = {}

    def sync(
        self, market: SharedMarket, wanted: Iterable[tuple[str, Series, Tier]], now_ms: int
    ) -> None:
        """Fetch, in one round trip, every bucket from each wanted series' last mirrored
        bucket on (the only one that can have changed) or from its span's start."""
        requests: list[tuple[str, int]] = []
        targets: list[_Buckets] = []
        for coin, series, tier in wanted:
            key = tier.key(series, coin)
            buckets = self._series.get(key)
            if buckets is None:
                buckets = self._series[key] = _Buckets()
            horizon = now_ms - tier.span_ms - tier.bucket_ms
            buckets.trim(horizon)
            start = buckets.starts[-1] if buckets.starts else horizon
            requests.append((key, start))
            targets.append(buckets)
        for (_key, start), buckets, members in zip(
            requests, targets, market.history(requests), strict=True
        ):
            buckets.replace_from(start, members)

    def range(
        self, coin: str, series: Series, window_ms: int, now_ms: int, latest: Decimal
    ) -> WindowRange:
        buckets = self._series.get(tier_for(window_ms).key(series, coin))
        if buckets is None:
            return WindowRange(latest=latest, low=latest, high=latest, covered=False)
        return buckets.range(latest, now_ms - window_ms)

    def forget(self, keep: set[str]) -> None:
        """Drop mirrored series no longer wanted (their alerts went away)."""
        for key in [k for k in self._series if k not in keep]:
            del self._series[key]


class SharedView(MarketState):
    """The :class:`~domain.alerts.view.MarketView` of one evaluation: a :class:`MarketState`
    of the latest values this task applied or read from Redis, with windows from the shared
    history (never from local memory alone)."""

    def __init__(
        self,
        mirror: HistoryMirror,
        *,
        max_age_ms: int,
        position_max_age_ms: int,
        started_ms: int,
    ) -> None:
        super().__init__(
            max_age_ms=max_age_ms,
            position_max_age_ms=position_max_age_ms,
            history_ms=0,
            started_ms=started_ms,
        )
        self._mirror = mirror
        self._seen: dict[tuple[str, Stream], int] = {}

    def window(self, coin: str, series: Series, window_ms: int, now_ms: int) -> WindowRange | None:
        read = self.mid if series is Series.MID else self.open_interest
        latest = read(coin, now_ms)
        if latest is None:
            return None
        return self._mirror.range(coin, series, window_ms, now_ms, latest)

    def set_seen(self, stream: Stream, seen: Mapping[str, int]) -> None:
        """Take the shared seen times of ``stream`` (what ``stale_data`` measures)."""
        for coin, time_ms in seen.items():
            self._seen[(coin, stream)] = time_ms

    def last_seen(self, coin: str, stream: Stream) -> int | None:
        local = super().last_seen(coin, stream)
        shared = self._seen.get((coin, stream))
        if local is None or shared is None:
            return shared if local is None else local
        return max(local, shared)
