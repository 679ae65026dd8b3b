"""What a replayed recording covers, and the live gaps inside it that it heals.

A recording holds every frame its ingester received. Between the first and the last trade
of a coin it played, the replay's own gap records (a recorded close, a ``D`` line, a
crash: ``workers/replay/player.py``) are the only holes; everywhere else the recording
held the coin's whole stream, and the replay has stored it (same keys as live). So a
gap of any other source — the live run's outbox overflow, a broker outage, a drop of the
live ingester that this recording's ingester did not see — lying wholly inside such a span
is filled: it is settled ``healed`` by ``replay``, with the trades now stored in its window,
exactly as an archive import settles the gaps its files cover (the same function,
``domain.archive.coverage.heal_inside``).

What stays as it was: a gap still open (its end unknown), a gap reaching past what was
played, and wallets' ``userFills`` gaps (a recording holds a wallet's fills only while it
was subscribed; the player does not track that span).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from domain.archive.coverage import heal_inside
from models.db import Database

HEALED_BY = "replay"


def covered_spans(
    seen: Mapping[str, Iterable[int]], own_gaps: Iterable[Mapping[str, Any]]
) -> dict[str, list[tuple[int, int]]]:
    """Per coin, the spans of trade time the replay played without a hole of its own:
    ``seen`` (coin → first and last trade ms) less the replay's own ``trades`` gaps (a gap
    still open at the end cuts the span off at its start)."""
    holes: dict[str, list[tuple[int, int | None]]] = {}
    for gap in own_gaps:
        if gap.get("stream") == "trades":
            holes.setdefault(str(gap["key"]), []).append((int(gap["from_ms"]), gap.get("to_ms")))
    out: dict[str, list[tuple[int, int]]] = {}
    for coin, bounds in seen.items():
        lo, hi = list(bounds)
        spans = [(lo, hi)]
        for start, end in sorted(holes.get(coin, []), key=lambda h: h[0]):
            last_lo, last_hi = spans.pop()
            if start > last_lo:
                spans.append((last_lo, min(start, last_hi)))
            if end is not None and end < last_hi:
                spans.append((max(int(end), last_lo), last_hi))
            if not spans:
                break
        out[coin] = spans
    return out


def heal_replayed(
    database: Database, seen: Mapping[str, Iterable[int]], own_gaps: Iterable[Mapping[str, Any]]
) -> int:
    """Settle the gaps the replay covered (module doc); returns how many."""
    healed = 0
    with database.session() as session:
        for coin, spans in sorted(covered_spans(seen, own_gaps).items()):
            healed += heal_inside(session, "trades", [coin], spans, HEALED_BY)
        session.commit()
    return healed
