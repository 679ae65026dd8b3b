"""The threshold index: which alerts a market tick crosses, found by binary search.

Architecture §3.5: evaluation does not scan. Simple-threshold rules (``price_above`` /
``price_below`` per price source, ``funding_above`` / ``funding_below``) live in one sorted
*book* per (coin, :data:`IndexKey`); a tick bisects each book of its coins once, so the cost
grows with the alerts a tick crosses, not with the alerts that exist. The other kinds (price
move, open-interest change, liquidation distance, stale data) have no single level to sort
by; they are kept in small per-coin id sets and evaluated directly.

Contract:

- The index holds alert **ids** only, no rules: the caller loads the few candidate rules and
  confirms each with :func:`domain.alerts.judgement.evaluate` (snooze, cooldown and expiry are
  time-dependent and deliberately not indexed), so candidates are a superset of what fires
  and never miss an alert whose condition holds.
- Levels compare **exactly as Decimal**. Each book stores its levels as integers scaled by
  ``10**exp`` (``exp`` = the most decimal places in that book) in an ``array('q')``, next to
  an ``array('q')`` of ids — 16 bytes an alert — and falls back to plain lists if a level
  does not fit in 64 bits. A tick value is scaled with floor or ceiling, which keeps every
  comparison exact.
- :attr:`Purpose.FIRE` indexes armed rules at their threshold (crossed = condition holds);
  :attr:`Purpose.REARM` indexes disarmed recurring rules at
  :func:`~domain.alerts.judgement.rearm_level` (crossed = the condition is false by the margin),
  so re-arming does not scan either. Rules that do not belong to the purpose are ignored.
- Not thread-safe; one index per worker process, rebuilt or patched when alerts change.
"""

from __future__ import annotations

import math
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from enum import StrEnum
from typing import Final

from domain.alerts.definition import (
    FUNDING_KINDS,
    PRICE_KINDS,
    AlertKind,
    AlertRule,
    Mode,
    PriceSource,
    comparison,
)
from domain.alerts.judgement import rearm_level
from domain.alerts.market_state import Quote

IndexKey = tuple[AlertKind, PriceSource | None]
"""A book within a coin: ``(kind, price source)`` for price kinds, ``(kind, None)`` for funding."""

_INT64: Final = 2**63 - 1
# Enough precision that scaling a level or a tick value by a power of ten is always exact.
_EXACT: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


class Purpose(StrEnum):
    FIRE = "fire"
    REARM = "rearm"


def index_key(rule: AlertRule) -> IndexKey | None:
    """The book a rule belongs in, or None for kinds evaluated directly."""
    if rule.kind in PRICE_KINDS:
        return (rule.kind, rule.price_source)
    if rule.kind in FUNDING_KINDS:
        return (rule.kind, None)
    return None


def _quote_field(key: IndexKey) -> str:
    kind, source = key
    return "funding" if kind in FUNDING_KINDS else str(source)


def _decimals(level: Decimal) -> int:
    exponent = level.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _scale(level: Decimal, exp: int) -> int:
    # Exact: ``exp`` is at least the level's decimal places, so the result is integral.
    return int(level.scaleb(exp, _EXACT))


def _store(values: Iterable[int]) -> MutableSequence[int]:
    values = list(values)
    if all(-_INT64 <= v <= _INT64 for v in values):
        return array("q", values)
    return values


class _Book:
    """Levels of one (coin, key) sorted ascending, ids in parallel.

    ``low_side`` True: a tick matches the levels below it (a prefix); False: those above it
    (a suffix). ``strict`` excludes a level equal to the tick.
    """

    __slots__ = ("exp", "field", "ids", "levels", "low_side", "strict")

    def __init__(self, field: str, low_side: bool, strict: bool) -> None:
        self.field = field
        self.low_side = low_side
        self.strict = strict
        self.exp = 0
        self.levels: MutableSequence[int] = array("q")
        self.ids: MutableSequence[int] = array("q")

    def fill(self, pairs: list[tuple[Decimal, int]]) -> None:
        """Replace the contents with ``pairs`` of (level, id): one sort."""
        self.exp = max((_decimals(level) for level, _ in pairs), default=0)
        scaled = [_scale(level, self.exp) for level, _ in pairs]
        order = sorted(range(len(pairs)), key=scaled.__getitem__)
        self.levels = _store(scaled[i] for i in order)
        self.ids = array("q", (pairs[i][1] for i in order))

    def insert(self, level: Decimal, alert_id: int) -> None:
        decimals = _decimals(level)
        if decimals > self.exp:
            factor = 10 ** (decimals - self.exp)
            self.levels = _store(v * factor for v in self.levels)
            self.exp = decimals
        key = _scale(level, self.exp)
        if isinstance(self.levels, array) and not -_INT64 <= key <= _INT64:
            self.levels = list(self.levels)
        pos = bisect_right(self.levels, key)
        self.levels.insert(pos, key)
        self.ids.insert(pos, alert_id)

    def delete(self, alert_ids: set[int]) -> None:
        if len(alert_ids) == 1:
            pos = self.ids.index(next(iter(alert_ids)))
            del self.levels[pos]
            del self.ids[pos]
            return
        keep = [i for i, alert_id in enumerate(self.ids) if alert_id not in alert_ids]
        self.levels = _store(self.levels[i] for i in keep)
        self.ids = array("q", (self.ids[i] for i in keep))

    def matching(self, value: Decimal) -> Sequence[int]:
        scaled = value.scaleb(self.exp, _EXACT)
        if self.low_side:
            # levels <= v  <=>  level <= floor(v);   levels < v  <=>  level < ceil(v)
            pos = (
                bisect_left(self.levels, math.ceil(scaled))
                if self.strict
                else bisect_right(self.levels, math.floor(scaled))
            )
            return self.ids[:pos] if pos else ()
        # levels >= v  <=>  level >= ceil(v);   levels > v  <=>  level > floor(v)
        pos = (
            bisect_right(self.levels, math.floor(scaled))
            if self.strict
            else bisect_left(self.levels, math.ceil(scaled))
        )
        return self.ids[pos:] if pos < len(self.ids) else ()

    def nbytes(self) -> int:
        total = sys.getsizeof(self)
        for seq in (self.levels, self.ids):
            total += sys.getsizeof(seq)
            if isinstance(seq, list):
                total += sum(sys.getsizeof(v) for v in seq)
        return total


class ThresholdIndex:
    """Armed (or, for :attr:`Purpose.REARM`, re-armable) alerts by coin, ready for ticks."""

    def __init__(self, purpose: Purpose = Purpose.FIRE) -> None:
        self.purpose = purpose
        self._books: dict[str, dict[IndexKey, _Book]] = {}
        self._book_of: dict[int, _Book] = {}
        self._direct: dict[str, set[int]] = {}
        self._direct_coin: dict[int, str] = {}

    # --- membership ------------------------------------------------------------------------

    def belongs(self, rule: AlertRule) -> bool:
        """FIRE holds armed rules; REARM holds disarmed recurring ones."""
        if self.purpose is Purpose.FIRE:
            return rule.armed
        return not rule.armed and rule.mode is Mode.RECURRING

    def _level(self, rule: AlertRule) -> Decimal:
        return rule.threshold if self.purpose is Purpose.FIRE else rearm_level(rule)

    def _new_book(self, key: IndexKey) -> _Book:
        above = comparison(key[0]) == "ge"
        if self.purpose is Purpose.FIRE:
            # v >= T matches levels at or below v; v <= T matches levels at or above v.
            return _Book(_quote_field(key), low_side=above, strict=False)
        # Re-arm: v < level (was "ge") matches levels above v; v > level matches levels below.
        return _Book(_quote_field(key), low_side=not above, strict=True)

    def _book(self, coin: str, key: IndexKey) -> _Book:
        books = self._books.setdefault(coin, {})
        book = books.get(key)
        if book is None:
            book = books[key] = self._new_book(key)
        return book

    @classmethod
    def build(cls, rules: Iterable[AlertRule], purpose: Purpose = Purpose.FIRE) -> ThresholdIndex:
        """An index of every rule that belongs to ``purpose``; each book is sorted once.
        A repeated id keeps its last rule."""
        index = cls(purpose)
        latest: dict[int, AlertRule] = {}
        for rule in rules:
            if index.belongs(rule):
                latest[rule.id] = rule
        grouped: dict[tuple[str, IndexKey], list[tuple[Decimal, int]]] = {}
        for rule in latest.values():
            key = index_key(rule)
            if key is None:
                index._direct.setdefault(rule.coin, set()).add(rule.id)
                index._direct_coin[rule.id] = rule.coin
            else:
                grouped.setdefault((rule.coin, key), []).append((index._level(rule), rule.id))
        for (coin, key), pairs in grouped.items():
            book = index._book(coin, key)
            book.fill(pairs)
            for _, alert_id in pairs:
                index._book_of[alert_id] = book
        return index

    def add(self, rule: AlertRule) -> bool:
        """Insert or replace ``rule``; False (and any old entry removed) if it does not belong."""
        self.remove(rule.id)
        if not self.belongs(rule):
            return False
        key = index_key(rule)
        if key is None:
            self._direct.setdefault(rule.coin, set()).add(rule.id)
            self._direct_coin[rule.id] = rule.coin
            return True
        book = self._book(rule.coin, key)
        book.insert(self._level(rule), rule.id)
        self._book_of[rule.id] = book
        return True

    def remove(self, alert_id: int) -> bool:
        """Drop one alert; False if it was not indexed. Cost: one pass over its book."""
        return self.remove_many((alert_id,)) == 1

    def remove_many(self, alert_ids: Iterable[int]) -> int:
        """Drop many alerts (e.g. all that just fired), rebuilding each affected book once.
        Returns how many were indexed."""
        per_book: dict[int, tuple[_Book, set[int]]] = {}
        removed = 0
        for alert_id in alert_ids:
            book = self._book_of.pop(alert_id, None)
            if book is not None:
                per_book.setdefault(id(book), (book, set()))[1].add(alert_id)
                removed += 1
                continue
            coin = self._direct_coin.pop(alert_id, None)
            if coin is not None:
                self._direct[coin].discard(alert_id)
                removed += 1
        for book, ids in per_book.values():
            book.delete(ids)
        return removed

    def __len__(self) -> int:
        return len(self._book_of) + len(self._direct_coin)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._book_of or alert_id in self._direct_coin

    # --- queries ---------------------------------------------------------------------------

    def crossed(self, coin: str, key: IndexKey, value: Decimal) -> Sequence[int]:
        """Ids in ``coin``'s ``key`` book that ``value`` crosses. FIRE: for an ``*_above``
        key the thresholds <= value, for ``*_below`` those >= value. REARM: the rules whose
        re-arm level ``value`` has strictly passed."""
        book = self._books.get(coin, {}).get(key)
        return book.matching(value) if book is not None else ()

    def direct(self, coin: str) -> Sequence[int]:
        """Ids of ``coin``'s non-threshold rules, to evaluate one by one."""
        return tuple(self._direct.get(coin, ()))

    def direct_ids(self) -> list[int]:
        """Every non-threshold id, for a periodic pass (``stale_data`` must fire even when no
        tick arrives)."""
        return list(self._direct_coin)

    def candidates_for_tick(self, quotes: Mapping[str, Quote], direct: bool = True) -> list[int]:
        """Ids to evaluate for a market tick: the crossed ids of every book of every coin in
        ``quotes`` (an unknown value crosses nothing), plus, with ``direct``, those coins'
        non-threshold ids."""
        out: list[int] = []
        books_by_coin = self._books
        direct_by_coin = self._direct
        for coin, quote in quotes.items():
            books = books_by_coin.get(coin)
            if books is not None:
                for book in books.values():
                    value = getattr(quote, book.field)
                    if value is not None:
                        out.extend(book.matching(value))
            if direct:
                ids = direct_by_coin.get(coin)
                if ids:
                    out.extend(ids)
        return out

    def memory_bytes(self) -> int:
        """Estimated bytes held: books, their arrays, and the id maps including the id ints
        (counted as owned, which they are once the rows they came from are dropped)."""
        total = sys.getsizeof(self._books) + sys.getsizeof(self._book_of)
        total += sys.getsizeof(self._direct) + sys.getsizeof(self._direct_coin)
        for books in self._books.values():
            total += sys.getsizeof(books) + sum(book.nbytes() for book in books.values())
        for ids in self._direct.values():
            total += sys.getsizeof(ids)
        total += sum(sys.getsizeof(i) for i in self._book_of)
        total += sum(sys.getsizeof(i) for i in self._direct_coin)
        return total
