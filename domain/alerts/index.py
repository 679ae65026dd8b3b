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
- Levels compare **exactly as Decimal**, and one rule's precision costs nothing for the
  others. Each book keys its levels at a *fixed* scale ``10**exp`` (:data:`BOOK_DECIMALS`:
  the most decimals a threshold of its kind may have, so every threshold is keyed exactly)
  as ``2 * floor(level * 10**exp)``, plus one when the level is finer than the scale — a
  re-arm level ``T ± |T|·m`` often is. An odd key sits strictly between the two even keys
  around it, so the keys sort like the levels; the few fine levels keep their exact Decimal
  beside the arrays, and only those in the very cell a tick value falls in are compared as
  Decimal. The keys are an ``array('q')`` next to an ``array('q')`` of ids, 16 bytes an
  alert; the bounds on thresholds (``definition.THRESHOLD_BOUNDS``) keep every key within
  64 bits. A tick value is keyed the same way, so a tick costs two bisections per book
  whatever the precision of the rules in it.
- :attr:`Purpose.FIRE` indexes armed rules at their threshold (crossed = condition holds);
  :attr:`Purpose.REARM` indexes disarmed recurring rules at
  :func:`~domain.alerts.judgement.rearm_level` (crossed = the condition is false by the margin),
  so re-arming does not scan either. Rules that do not belong to the purpose are ignored.
- Not thread-safe; one index per worker process, rebuilt or patched when alerts change.
"""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from decimal import Decimal
from enum import StrEnum
from itertools import compress
from operator import not_
from typing import Final

from domain.alerts.definition import (
    FUNDING_KINDS,
    PRICE_KINDS,
    THRESHOLD_BOUNDS,
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

# Book scale (decimals) per kind: the most decimals its thresholds may have.
BOOK_DECIMALS: Final[dict[AlertKind, int]] = {
    kind: THRESHOLD_BOUNDS[kind].decimals for kind in PRICE_KINDS | FUNDING_KINDS
}
# A value whose scaled order of magnitude passes this is beyond every level — the largest
# bounded level, a price re-arm level under 2 * 10**9, scales to under 2 * 10**17 — and is
# keyed as _BEYOND_KEY: comparing it costs what an ordinary value costs however many digits
# it has, and its key still fits int64 (2**62 < 2**63).
_MAX_MAGNITUDE: Final = 17
_BEYOND_KEY: Final = 2**62
_POW10: Final = [10**i for i in range(max(BOOK_DECIMALS.values()) + 1)]


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


def book_key(level: Decimal, exp: int) -> tuple[int, bool]:
    """(key, fine) of ``level`` in a book of scale ``10**exp``: ``2 * floor(level * 10**exp)``,
    plus one — and fine — when ``level`` has more than ``exp`` decimals. Keys sort exactly
    like levels; equal keys are equal levels unless fine. Exact integer arithmetic on the
    level's ratio; a value beyond every level, or within one unit of the scale from zero, is
    keyed from its exponent alone (however many digits it has)."""
    if not level:
        return 0, False
    magnitude = level.adjusted() + exp  # the scaled value's order of magnitude
    if magnitude > _MAX_MAGNITUDE:
        return (_BEYOND_KEY, False) if level > 0 else (-_BEYOND_KEY, False)
    if magnitude < 0:  # 0 < |scaled| < 1: strictly inside the cell above or below zero
        return (1, True) if level > 0 else (-1, True)
    numerator, denominator = level.as_integer_ratio()
    cell, rest = divmod(numerator * _POW10[exp], denominator)
    return (2 * cell + 1, True) if rest else (2 * cell, False)


# Up to this many scattered ids are deleted one by one (a memmove each); more, by a rebuild.
_FEW_DELETES: Final = 64


class _Book:
    """Levels of one (coin, key) sorted ascending as keys (:func:`book_key`), ids in
    parallel, and the exact level of each fine key.

    ``low_side`` True: a tick matches the levels below it (a prefix); False: those above it
    (a suffix). ``strict`` excludes a level equal to the tick.
    """

    __slots__ = ("exp", "factor", "field", "fine", "ids", "levels", "low_side", "strict")

    def __init__(self, field: str, exp: int, low_side: bool, strict: bool) -> None:
        self.field = field
        self.exp = exp
        self.factor = _POW10[exp]
        self.low_side = low_side
        self.strict = strict
        self.levels: MutableSequence[int] = array("q")
        self.ids: MutableSequence[int] = array("q")
        self.fine: dict[int, Decimal] = {}

    def fill(self, pairs: list[tuple[Decimal, int]]) -> None:
        """Replace the contents with ``pairs`` of (level, id): one sort."""
        keys: list[int] = []
        self.fine = {}
        for level, alert_id in pairs:
            key, fine = book_key(level, self.exp)
            keys.append(key)
            if fine:
                self.fine[alert_id] = level
        order = sorted(range(len(pairs)), key=keys.__getitem__)
        self.levels = array("q", (keys[i] for i in order))
        self.ids = array("q", (pairs[i][1] for i in order))

    def insert(self, level: Decimal, alert_id: int) -> None:
        key, fine = book_key(level, self.exp)
        if fine:
            self.fine[alert_id] = level
        pos = bisect_right(self.levels, key)
        self.levels.insert(pos, key)
        self.ids.insert(pos, alert_id)

    def delete(self, alert_ids: set[int]) -> None:
        """Drop ``alert_ids`` (all in this book). Their positions come from one pass in C
        over the ids; then one slice when they are adjacent — what a cascade fires: the
        band of levels a move went through —, else one ``del`` each (a memmove) while they
        are few, else one rebuild. Rebuilding in a Python loop for every batch of firings
        was a quarter of an alerts worker's time in a cascade (docs/PERFORMANCE.md)."""
        for alert_id in alert_ids:
            self.fine.pop(alert_id, None)
        if len(alert_ids) == 1:
            pos = self.ids.index(next(iter(alert_ids)))
            del self.levels[pos]
            del self.ids[pos]
            return
        gone = list(map(alert_ids.__contains__, self.ids))
        positions = list(compress(range(len(gone)), gone))
        if not positions:
            return
        first, last = positions[0], positions[-1]
        if last - first + 1 == len(positions):
            del self.levels[first : last + 1]
            del self.ids[first : last + 1]
        elif len(positions) <= _FEW_DELETES:
            for pos in reversed(positions):
                del self.levels[pos]
                del self.ids[pos]
        else:
            keep = list(map(not_, gone))
            self.levels = array("q", compress(self.levels, keep))
            self.ids = array("q", compress(self.ids, keep))

    def _holds(self, level: Decimal, value: Decimal) -> bool:
        if self.low_side:
            return level < value if self.strict else level <= value
        return level > value if self.strict else level >= value

    def matching(self, value: Decimal) -> Sequence[int]:
        """Ids whose level ``value`` crosses: two bisections, and an exact comparison of the
        fine levels in ``value``'s own cell, if ``value`` falls inside one."""
        # book_key(value, self.exp), its common case inline: this runs for every book of
        # every coin on every tick.
        if 0 <= value.adjusted() + self.exp <= _MAX_MAGNITUDE:
            numerator, denominator = value.as_integer_ratio()
            cell, inside = divmod(numerator * self.factor, denominator)
            key = 2 * cell + 1 if inside else 2 * cell
        else:
            key, inside = book_key(value, self.exp)
        levels, ids = self.levels, self.ids
        if not inside:
            # ``value`` is exactly an even key: a level keyed equal is equal to it, an odd key
            # below or above it is a level strictly below or above it.
            if self.low_side:
                pos = bisect_left(levels, key) if self.strict else bisect_right(levels, key)
                return ids[:pos] if pos else ()
            pos = bisect_right(levels, key) if self.strict else bisect_left(levels, key)
            return ids[pos:] if pos < len(ids) else ()
        # ``value`` lies strictly inside a cell: levels keyed below it are below the value,
        # above it above; those keyed in the same cell (fine ones) are compared exactly.
        lo = bisect_left(levels, key)
        hi = bisect_right(levels, key, lo) if self.fine else lo  # no fine level: none here
        band = [i for i in ids[lo:hi] if self._holds(self.fine[i], value)] if hi > lo else []
        if self.low_side:
            head = ids[:lo] if lo else ()
            return [*head, *band] if band else head
        tail = ids[hi:] if hi < len(ids) else ()
        return [*band, *tail] if band else tail

    def nbytes(self) -> int:
        total = sys.getsizeof(self) + sys.getsizeof(self.fine)
        for seq in (self.levels, self.ids):
            total += sys.getsizeof(seq)
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
        field, exp = _quote_field(key), BOOK_DECIMALS[key[0]]
        if self.purpose is Purpose.FIRE:
            # v >= T matches levels at or below v; v <= T matches levels at or above v.
            return _Book(field, exp, low_side=above, strict=False)
        # Re-arm: v < level (was "ge") matches levels above v; v > level matches levels below.
        return _Book(field, exp, low_side=not above, strict=True)

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
