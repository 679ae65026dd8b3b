"""The per-coin market view that alert evaluation reads: a :class:`~domain.alerts.view.MarketView`.

Pure and in-memory: the alerts task feeds it the events of each market batch
(:class:`events.Mid`, :class:`events.AssetContext`, :class:`events.Position`) and then asks
questions with an explicit ``now_ms``; nothing here reads the clock.

Contract:

- **Monotonic per coin and stream.** An input older than the last one applied for the same
  coin and stream (or, for positions, the same wallet and coin) is skipped and ``apply``
  returns False. An input with the *same* time is applied: batches are delivered at least
  once, and re-applying the same value changes nothing.
- **Stale is unknown.** Every read takes ``now_ms`` and answers ``None`` when the latest value
  is older than ``max_age_ms`` (``position_max_age_ms`` for positions) — never zero, never the
  last value seen an hour ago.
- **Bounded history.** Mids and open interest keep a rolling history of ``history_ms`` in
  buckets of ``bucket_ms`` (each bucket holds the low and high seen in it), so percentage-move
  alerts can ask for the range of a window. Memory is about ``history_ms / bucket_ms`` buckets
  per coin and series; the caller sizes ``history_ms`` to the longest window it evaluates.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from domain.alerts.view import Series, Stream, WindowRange
from events import AssetContext, Mid, Position


@dataclass(frozen=True, slots=True)
class Quote:
    """One coin's fresh values at a moment; ``None`` means unknown (missing or stale)."""

    mid: Decimal | None
    mark: Decimal | None
    funding: Decimal | None


class _Bucket:
    __slots__ = ("high", "low", "start")

    def __init__(self, start: int, value: Decimal) -> None:
        self.start = start
        self.low = value
        self.high = value


class _History:
    """Bucketed low/high of one series, oldest bucket first."""

    __slots__ = ("_bucket_ms", "_buckets", "_keep_ms")

    def __init__(self, bucket_ms: int, history_ms: int) -> None:
        self._bucket_ms = bucket_ms
        # One bucket beyond the history so a window as long as the history is still covered.
        self._keep_ms = history_ms + bucket_ms
        self._buckets: deque[_Bucket] = deque()

    def add(self, time_ms: int, value: Decimal) -> None:
        start = time_ms - time_ms % self._bucket_ms
        buckets = self._buckets
        if buckets and buckets[-1].start == start:
            last = buckets[-1]
            if value < last.low:
                last.low = value
            if value > last.high:
                last.high = value
        else:
            buckets.append(_Bucket(start, value))
        horizon = start - self._keep_ms
        while buckets[0].start < horizon:
            buckets.popleft()

    def range(self, latest: Decimal, since_ms: int) -> WindowRange:
        low = high = latest
        covered = False
        for bucket in reversed(self._buckets):
            if bucket.start <= since_ms:
                covered = True
            if bucket.start < since_ms:
                break
            if bucket.low < low:
                low = bucket.low
            if bucket.high > high:
                high = bucket.high
        return WindowRange(latest=latest, low=low, high=high, covered=covered)


class MarketState:
    """Latest mids, asset contexts and positions, with staleness and short histories."""

    def __init__(
        self,
        *,
        max_age_ms: int,
        position_max_age_ms: int | None = None,
        history_ms: int = 3_600_000,
        bucket_ms: int = 1_000,
        started_ms: int = 0,
    ) -> None:
        """``started_ms`` is when this view began watching: a coin never seen since then has
        been silent since ``started_ms`` (what ``stale_data`` measures), not since forever."""
        # Positions come from polling as well as pushes, so they may legitimately be older.
        position_max_age_ms = max_age_ms if position_max_age_ms is None else position_max_age_ms
        if min(max_age_ms, position_max_age_ms, bucket_ms) <= 0 or history_ms < 0:
            raise ValueError("ages and bucket_ms must be positive, history_ms not negative")
        self.max_age_ms = max_age_ms
        self.position_max_age_ms = position_max_age_ms
        self.history_ms = history_ms
        self.bucket_ms = bucket_ms
        self.started_ms = started_ms
        self._mids: dict[str, Mid] = {}
        self._contexts: dict[str, AssetContext] = {}
        self._positions: dict[tuple[str, str], Position] = {}
        self._history: dict[tuple[str, Series], _History] = {}

    # --- updates ---------------------------------------------------------------------------

    def apply(self, event: Mid | AssetContext | Position) -> bool:
        """Apply one event; False when it is older than what this view already holds."""
        if isinstance(event, Mid):
            return self.apply_mid(event)
        if isinstance(event, AssetContext):
            return self.apply_context(event)
        return self.apply_position(event)

    def apply_all(self, events: Iterable[Mid | AssetContext | Position]) -> int:
        """Apply a batch; returns how many events were applied (the rest were out of order)."""
        return sum(1 for event in events if self.apply(event))

    def apply_mid(self, mid: Mid) -> bool:
        last = self._mids.get(mid.coin)
        if last is not None and mid.time < last.time:
            return False
        self._mids[mid.coin] = mid
        self._record(mid.coin, Series.MID, mid.time, mid.px)
        return True

    def apply_context(self, ctx: AssetContext) -> bool:
        last = self._contexts.get(ctx.coin)
        if last is not None and ctx.time < last.time:
            return False
        self._contexts[ctx.coin] = ctx
        self._record(ctx.coin, Series.OPEN_INTEREST, ctx.time, ctx.open_interest)
        return True

    def apply_position(self, position: Position) -> bool:
        key = (position.user.lower(), position.coin)
        last = self._positions.get(key)
        if last is not None and position.time < last.time:
            return False
        self._positions[key] = position
        return True

    def _record(self, coin: str, series: Series, time_ms: int, value: Decimal) -> None:
        if self.history_ms == 0:
            return
        history = self._history.get((coin, series))
        if history is None:
            history = self._history[(coin, series)] = _History(self.bucket_ms, self.history_ms)
        history.add(time_ms, value)

    # --- reads (None = unknown) ------------------------------------------------------------

    def _fresh(self, time_ms: int, now_ms: int, max_age_ms: int) -> bool:
        return now_ms - time_ms <= max_age_ms

    def mid(self, coin: str, now_ms: int) -> Decimal | None:
        mid = self._mids.get(coin)
        fresh = mid is not None and self._fresh(mid.time, now_ms, self.max_age_ms)
        return mid.px if mid is not None and fresh else None

    def context(self, coin: str, now_ms: int) -> AssetContext | None:
        ctx = self._contexts.get(coin)
        return ctx if ctx is not None and self._fresh(ctx.time, now_ms, self.max_age_ms) else None

    def mark(self, coin: str, now_ms: int) -> Decimal | None:
        ctx = self.context(coin, now_ms)
        return ctx.mark_px if ctx is not None else None

    def funding(self, coin: str, now_ms: int) -> Decimal | None:
        """The hourly funding rate exactly as Hyperliquid sends it."""
        ctx = self.context(coin, now_ms)
        return ctx.funding if ctx is not None else None

    def open_interest(self, coin: str, now_ms: int) -> Decimal | None:
        ctx = self.context(coin, now_ms)
        return ctx.open_interest if ctx is not None else None

    def position(self, wallet: str, coin: str, now_ms: int) -> Position | None:
        """The wallet's fresh position in ``coin``, flat ones included (szi 0); else None."""
        position = self._positions.get((wallet.lower(), coin))
        if position is None or not self._fresh(position.time, now_ms, self.position_max_age_ms):
            return None
        return position

    def position_seen(self, wallet: str, coin: str) -> int | None:
        """Time of the wallet's latest applied position in ``coin``; None if never seen."""
        position = self._positions.get((wallet.lower(), coin))
        return position.time if position is not None else None

    def last_seen(self, coin: str, stream: Stream) -> int | None:
        """Time of the latest applied event of ``stream`` for ``coin``; None if never seen."""
        latest = self._mids.get(coin) if stream is Stream.MIDS else self._contexts.get(coin)
        return latest.time if latest is not None else None

    def silence_ms(self, coin: str, stream: Stream, now_ms: int) -> int:
        """How long ``stream`` has been silent for ``coin``: since its last event, or since
        this view started watching if it never had one. Never negative."""
        seen = self.last_seen(coin, stream)
        return max(0, now_ms - (self.started_ms if seen is None else seen))

    def window(self, coin: str, series: Series, window_ms: int, now_ms: int) -> WindowRange | None:
        """Low/high of ``series`` over ``[now_ms - window_ms, now_ms]`` ending at the fresh
        latest value; None when the latest value is unknown. The window is made of the whole
        buckets that start inside it, so it never reaches further back than asked."""
        read = self.mid if series is Series.MID else self.open_interest
        latest = read(coin, now_ms)
        if latest is None:
            return None
        history = self._history.get((coin, series))
        if history is None:
            return WindowRange(latest=latest, low=latest, high=latest, covered=False)
        return history.range(latest, now_ms - window_ms)

    def quote(self, coin: str, now_ms: int) -> Quote:
        return Quote(
            mid=self.mid(coin, now_ms),
            mark=self.mark(coin, now_ms),
            funding=self.funding(coin, now_ms),
        )

    def quotes(self, now_ms: int, coins: Iterable[str] | None = None) -> dict[str, Quote]:
        """Fresh quotes for ``coins`` (default: every coin seen); coins with nothing fresh are left out."""
        wanted = self.coins() if coins is None else coins
        out: dict[str, Quote] = {}
        for coin in wanted:
            quote = self.quote(coin, now_ms)
            if quote.mid is not None or quote.mark is not None or quote.funding is not None:
                out[coin] = quote
        return out

    def coins(self) -> set[str]:
        """Every coin with a mid or an asset context applied."""
        return self._mids.keys() | self._contexts.keys()
