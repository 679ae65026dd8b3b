"""Batches published but not yet confirmed committed by a worker (runtime/confirmations.py).

Pure bookkeeping with an injected clock; the publisher thread owns it. Bounded by events:
beyond ``max_events`` the oldest stop being tracked (counted in :attr:`untracked`) — at very
high rates the protection then covers only the most recent batches rather than growing
without limit. A batch is identified by ``(source, seq)``: an ingester with several
sockets runs one pipeline per socket, each numbering its own batches from 1 under its own
source id, and workers confirm per source.
"""

from __future__ import annotations

from collections import OrderedDict

from runtime.clock import SYSTEM_CLOCK, Clock
from workers.ingester.outbox import Envelope

# The kinds a persist task confirms; mids only feed alerts and are never stored.
CONFIRMED_KINDS = frozenset({"trades", "asset_contexts", "positions", "fills"})

BatchId = tuple[str, int]  # (source, seq)


def batch_id(env: Envelope) -> BatchId:
    return env.source, env.seq


class AwaitingConfirmation:
    def __init__(self, timeout_s: float, max_events: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self.timeout_s = timeout_s
        self.max_events = max_events
        self._clock = clock
        self._items: OrderedDict[BatchId, tuple[float, Envelope]] = OrderedDict()
        self._events = 0
        self.untracked = 0

    def sent(self, env: Envelope) -> None:
        if self.max_events <= 0 or env.kind not in CONFIRMED_KINDS:
            return
        key = batch_id(env)
        if key in self._items:
            self._events -= self._items.pop(key)[1].count
        self._items[key] = (self._clock.monotonic(), env)
        self._events += env.count
        while self._events > self.max_events and self._items:
            _, (_, oldest) = self._items.popitem(last=False)
            self._events -= oldest.count
            self.untracked += oldest.count

    def due(self) -> list[Envelope]:
        """Tracked batches sent more than ``timeout_s`` ago, oldest first."""
        cutoff = self._clock.monotonic() - self.timeout_s
        out = []
        for sent_at, env in self._items.values():
            if sent_at > cutoff:
                break
            out.append(env)
        return out

    def settle(self, ids: set[BatchId]) -> None:
        """Stop tracking these (confirmed, or handed back to the outbox to be re-sent)."""
        for key in ids:
            item = self._items.pop(key, None)
            if item is not None:
                self._events -= item[1].count

    def __len__(self) -> int:
        return len(self._items)
