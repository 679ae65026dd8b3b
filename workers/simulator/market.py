"""Deterministic market generator: blocks of trades from a seeded ``random.Random``.

Contract:

* :meth:`Market.make_block` returns the next :class:`Block`: ``trades_per_block`` trades that
  all carry the block ``time``. Trades come in taker sweeps: one taker order filling one
  or more makers on one coin and side, sharing one ``hash`` (the trap §9.2: hash is not an
  id). Every ``tid`` is unique (a 50-bit bijection of a counter, so no set grows), and
  ``users`` is ``[buyer, seller]`` in lowercase hex, with the taker on the ``side`` it took.
* Same seed and same parameters → the same sequence of (coin, px, sz, side, tid, hash,
  users), whatever the block times are or when blocks are asked for. Only ``make_block``
  draws from the market's random stream.
* Prices walk in integer ticks of the coin's price scale; sizes are integer units of
  ``szDecimals``. Both become exact strings once (and prices are cached), so the hot path
  does integer work and dict building only.
* Each sweep is folded into its coin's 1m bar (:class:`~workers.simulator.candles.MinuteBars`)
  as it is made: a few integer comparisons per sweep, never a walk over history.
* Some trades involve a simulated user (taker or maker) with probability ``user_share``;
  the ledger turns those into fills. The draw happens whether or not users exist, so adding
  users changes addresses in the stream, not prices, sizes or tids.
* Every other side is one of the market's participants: 256 addresses drawn from the seed,
  and the ``wallets`` (``--wallets N``: :func:`sim_wallet_address` 0..N-1), which trade in
  the public stream like anyone else but have no ledger — no fills, no positions. Adding
  wallets changes addresses only, too; with none, the stream is what it always was.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from typing import Any, Protocol

from workers.simulator.candles import MinuteBars
from workers.simulator.money import to_units, units_str
from workers.simulator.universe import CoinSpec, Universe, activity_weight

Trade = dict[str, Any]  # the WsTrade wire dict, exactly as sent

_TID_BITS = 50
_TID_MASK = (1 << _TID_BITS) - 1
_SIZE_TABLE = 256
_PARTICIPANTS = 256
_PX_CACHE_MAX = 8192


def sim_user_address(index: int) -> str:
    """The ``index``-th simulated wallet address; independent of the seed so configs can name it."""
    digest = hashlib.sha256(f"hyperwatch-sim-user-{index}".encode()).hexdigest()
    return "0x" + digest[:40]


def sim_wallet_address(index: int) -> str:
    """The ``index``-th active address of ``--wallets`` (a participant without a ledger);
    independent of the seed, and never one of :func:`sim_user_address`'s."""
    digest = hashlib.sha256(f"hyperwatch-sim-wallet-{index}".encode()).hexdigest()
    return "0x" + digest[:40]


@dataclass(frozen=True, slots=True)
class Block:
    """One block: its time and its trades, in order and grouped by coin (one frame per coin)."""

    time: int
    trades: list[Trade]
    by_coin: dict[str, list[Trade]] = field(default_factory=dict)


class MarketView(Protocol):
    """What contexts, the ledger and ``/info`` read from a trade source."""

    universe: Universe

    def mid(self, coin: str) -> Decimal | None:
        """Mid price, or None when the coin has no book (delisted or never traded)."""

    def best_bid_ask(self, coin: str) -> tuple[Decimal, Decimal] | None:
        """Top of book, or None without a book."""

    def volumes(self, coin: str) -> tuple[Decimal, Decimal]:
        """(base units, USD notional) traded since start."""

    def candles(self, coin: str) -> MinuteBars | None:
        """The coin's 1m bars folded from every trade released so far (None: never listed)."""


class TidSequence:
    """Unique 50-bit trade ids that look random: an invertible mix of a counter."""

    def __init__(self, rng: random.Random) -> None:
        self._mul1 = rng.getrandbits(_TID_BITS) | 1  # odd → invertible mod 2^50
        self._add = rng.getrandbits(_TID_BITS)
        self._mul2 = rng.getrandbits(_TID_BITS) | 1
        self._count = 0

    def next(self) -> int:
        while True:
            self._count += 1
            x = (self._count * self._mul1 + self._add) & _TID_MASK
            x ^= x >> 25  # xor-shift right is invertible on a fixed width
            x = (x * self._mul2) & _TID_MASK
            x ^= x >> 23
            if x:  # the one counter that maps to 0 is skipped: tid 0 looks like "missing"
                return x


class _Book:
    """One coin's walking top of book (integer ticks) and traded totals."""

    __slots__ = (
        "band",
        "bars",
        "base",
        "bid",
        "ceiling",
        "floor",
        "jitter",
        "ntl",
        "origin",
        "px_cache",
        "px_decimals",
        "sizes",
        "spec",
        "vol",
    )

    def __init__(self, spec: CoinSpec, sizes: list[tuple[int, str]]) -> None:
        self.spec = spec
        self.px_decimals = spec.px_decimals
        self.base = to_units(spec.base_px, spec.px_decimals)
        self.origin = self.base  # the base before any cascade moved it (set_level)
        self.bid = self.base
        # Keep the walk within a band so a long run never reaches zero or absurd prices.
        self.floor = max(1, self.base // 2)
        self.ceiling = self.base * 2
        # About 5 bps per jitter step and a ±10 % reference band, whatever the tick size.
        self.jitter = max(1, self.base // 20_000)
        self.band = max(1, self.base // 10)
        self.sizes = sizes
        self.px_cache: dict[int, str] = {}
        self.vol = 0  # size units
        self.ntl = 0  # size units * price ticks
        self.bars = MinuteBars(spec.name, spec.px_decimals, spec.sz_decimals)

    def px(self, ticks: int) -> str:
        text = self.px_cache.get(ticks)
        if text is None:
            if len(self.px_cache) >= _PX_CACHE_MAX:
                self.px_cache.clear()
            text = self.px_cache[ticks] = units_str(ticks, self.px_decimals)
        return text


def _size_table(spec: CoinSpec, rng: random.Random) -> list[tuple[int, str]]:
    # Integer sizes from about $10 up to about $100k of notional, skewed small like real flow.
    ten_usd = max(1, to_units(Decimal(10) / spec.base_px, spec.sz_decimals))
    exponents = (0, 0, 0, 0, 1, 1, 1, 2, 2, 3)
    table = []
    for _ in range(_SIZE_TABLE):
        units = ten_usd * rng.randint(1, 9) * 10 ** rng.choice(exponents)
        table.append((units, units_str(units, spec.sz_decimals)))
    return table


class Market:
    """The generator. Not thread-safe; one event loop owns it."""

    def __init__(
        self,
        universe: Universe,
        *,
        seed: int,
        trades_per_block: int,
        users: tuple[str, ...] = (),
        user_share: float = 0.05,
        wallets: tuple[str, ...] = (),
    ) -> None:
        if trades_per_block < 1:
            raise ValueError("trades_per_block must be at least 1")
        self.universe = universe
        self.trades_per_block = trades_per_block
        self.users = users
        self.user_share = user_share if users else 0.0
        self._seed = seed
        self._rng = random.Random(seed)
        self._tids = TidSequence(self._rng)
        self._participants = [f"0x{self._rng.getrandbits(160):040x}" for _ in range(_PARTICIPANTS)]
        # Appended after the draws, so the seed's stream is the same with or without them.
        drawn = set(self._participants)
        self._participants += [w for w in dict.fromkeys(wallets) if w not in drawn]
        self._books = {
            spec.name: _Book(spec, _size_table(spec, self._rng)) for spec in universe.listed
        }
        self._order = list(self._books.values())
        self._cum_weights = list(accumulate(activity_weight(b.spec.name) for b in self._order))
        self.blocks_made = 0
        self.trades_made = 0

    def add_coin(self, spec: CoinSpec) -> None:
        """Start trading a coin listed mid-run (the universe already lists it). Its sizes
        come from a stream of its own, so nothing drawn before the listing changes; from
        the listing on, sweeps are spread over one coin more."""
        sizes = _size_table(spec, random.Random(f"listing:{self._seed}:{spec.name}"))
        book = _Book(spec, sizes)
        self._books[spec.name] = book
        self._order.append(book)
        self._cum_weights = list(accumulate(activity_weight(b.spec.name) for b in self._order))

    def remove_coin(self, name: str) -> None:
        """Stop trading a coin delisted mid-run (its book stays, for candles)."""
        self._order = [b for b in self._order if b.spec.name != name]
        self._cum_weights = list(accumulate(activity_weight(b.spec.name) for b in self._order))

    # --- generation --------------------------------------------------------------------

    def set_level(self, factor: float) -> None:
        """Move every coin's reference price to ``factor`` times its base (cascade mode):
        the touch moves by the same ticks, and the walk leans toward the new reference."""
        for book in self._order:
            target = max(1, round(book.origin * factor))
            delta = target - book.base
            if delta:
                book.base = target
                book.bid = max(1, book.bid + delta)
                book.floor = max(1, target // 2)
                book.ceiling = target * 2
                book.band = max(1, target // 10)

    def make_block(self, time_ms: int) -> Block:
        """The next block, stamped ``time_ms``."""
        trades: list[Trade] = []
        by_coin: dict[str, list[Trade]] = {}
        rnd = self._rng.random
        total = self._cum_weights[-1]
        remaining = self.trades_per_block
        while remaining:
            book = self._order[bisect_right(self._cum_weights, rnd() * total)]
            # Sweep lengths 1..4, mostly 1; a sweep never crosses a block boundary.
            length = min(remaining, 1 + int(rnd() * rnd() * 4))
            coin_trades = by_coin.get(book.spec.name)
            if coin_trades is None:
                coin_trades = by_coin[book.spec.name] = []
            self._sweep(book, length, time_ms, trades, coin_trades)
            remaining -= length
        self.blocks_made += 1
        self.trades_made += len(trades)
        return Block(time_ms, trades, by_coin)

    def _sweep(
        self, book: _Book, length: int, time_ms: int, out: list[Trade], coin_out: list[Trade]
    ) -> None:
        rng = self._rng
        rnd = rng.random
        # Lean against the drift (harder the further away) so the walk stays near its base.
        deviation = max(-1.0, min(1.0, (book.bid - book.base) / book.band))
        buy = rnd() < 0.5 - 0.2 * deviation
        # The same text as f"0x{bits:064x}", in under two thirds of the time.
        sweep_hash = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
        address, next_tid, px_text = self._address, self._tids.next, book.px
        taker = address(rnd())
        level = book.bid + 1 if buy else book.bid
        step = 1 if buy else -1
        side = "B" if buy else "A"
        coin = book.spec.name
        sizes = book.sizes
        vol = ntl = 0
        first = level
        for index in range(length):
            if index and rnd() < 0.5:
                level += step
            units, sz = sizes[int(rnd() * _SIZE_TABLE)]
            maker = address(rnd())
            if maker == taker:
                maker = (
                    self._participants[0]
                    if taker != self._participants[0]
                    else self._participants[1]
                )
            trade = {
                "coin": coin,
                "side": side,
                "px": px_text(level),
                "sz": sz,
                "time": time_ms,
                "hash": sweep_hash,
                "tid": next_tid(),
                "users": [taker, maker] if buy else [maker, taker],
            }
            out.append(trade)
            coin_out.append(trade)
            vol += units
            ntl += units * level
        book.vol += vol
        book.ntl += ntl
        # A sweep's prices move one way, so its first and last level bound it: O(1) per sweep.
        book.bars.fold(time_ms, first, level, vol, length)
        self._move(book, level, buy, rnd())

    def _address(self, draw: float) -> str:
        if draw < self.user_share:
            return self.users[int(draw / self.user_share * len(self.users))]
        return self._participants[int(draw * len(self._participants))]

    @staticmethod
    def _move(book: _Book, last_level: int, buy: bool, draw: float) -> None:
        # A sweep that walked the book moves the touch to where it stopped; otherwise the
        # touch jitters by a tick now and then.
        if buy and last_level > book.bid + 1:
            book.bid = last_level - 1
        elif not buy and last_level < book.bid:
            book.bid = last_level
        elif draw < 0.3:
            book.bid += book.jitter if draw < 0.15 else -book.jitter
        book.bid = min(book.ceiling, max(book.floor, book.bid))

    # --- MarketView --------------------------------------------------------------------

    def mid(self, coin: str) -> Decimal | None:
        book = self._books.get(coin)
        if book is None:
            return None
        return Decimal((2 * book.bid + 1) * 5).scaleb(-book.px_decimals - 1)

    def best_bid_ask(self, coin: str) -> tuple[Decimal, Decimal] | None:
        book = self._books.get(coin)
        if book is None:
            return None
        return (
            Decimal(book.bid).scaleb(-book.px_decimals),
            Decimal(book.bid + 1).scaleb(-book.px_decimals),
        )

    def volumes(self, coin: str) -> tuple[Decimal, Decimal]:
        book = self._books.get(coin)
        if book is None:
            return Decimal(0), Decimal(0)
        szd = book.spec.sz_decimals
        return Decimal(book.vol).scaleb(-szd), Decimal(book.ntl).scaleb(-szd - book.px_decimals)

    def candles(self, coin: str) -> MinuteBars | None:
        book = self._books.get(coin)
        return None if book is None else book.bars
