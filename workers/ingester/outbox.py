"""The bounded, in-order buffer between the parsing thread and the broker thread.

Contract: :meth:`Outbox.put` never blocks (the socket reader must keep reading, or pongs
stop and the exchange's replay window passes). When the events held would exceed
``max_events`` the *oldest* envelopes are dropped and returned to the caller, who must
count and report every event in them as lost — nothing is dropped silently. The envelope
the broker thread is sending at that moment is never dropped (it may be on the broker
already), so the bound can be exceeded by at most that one batch. Session records are
kept apart, latest per session id: they are upserts, so only the newest one matters.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from workers.ingester.broker import Target


@dataclass(slots=True, eq=False)
class Envelope:
    """One batch as it will travel: its JSON argument and where it goes."""

    kind: str
    seq: int
    count: int
    body: bytes
    targets: tuple[Target, ...]
    sent: int = 0  # targets already published, so a retry does not send one twice
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the pipeline that numbered it: seq is unique per source only


class Outbox:
    """Thread-safe; one producer thread (parser) and one consumer thread (publisher)."""

    def __init__(self, max_events: int) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.max_events = max_events
        self._items: deque[Envelope] = deque()
        self._events = 0
        self._inflight: Envelope | None = None
        self._sessions: dict[str, bytes] = {}
        self._sessions_busy = False
        self._cond = threading.Condition()

    def put(self, env: Envelope) -> list[Envelope]:
        """Queue ``env``; returns the envelopes dropped to make room (oldest first)."""
        dropped: list[Envelope] = []
        with self._cond:
            self._items.append(env)
            self._events += env.count
            while self._events > self.max_events:
                victim = self._oldest_droppable()
                if victim is None:
                    break
                self._items.remove(victim)
                self._events -= victim.count
                dropped.append(victim)
            self._cond.notify()
        return dropped

    def _oldest_droppable(self) -> Envelope | None:
        for env in self._items:
            if env is not self._inflight:
                return env
        return None

    def put_session(self, session_id: str, record_json: bytes) -> None:
        with self._cond:
            self._sessions[session_id] = record_json
            self._cond.notify()

    def take_sessions(self) -> dict[str, bytes]:
        """The pending session records; the caller must then call :meth:`sessions_done`."""
        with self._cond:
            sessions, self._sessions = self._sessions, {}
            self._sessions_busy = bool(sessions)
            return sessions

    def sessions_done(self, unsent: dict[str, bytes]) -> None:
        """Put back records that could not be sent, unless a newer one arrived meanwhile."""
        with self._cond:
            for key, value in unsent.items():
                self._sessions.setdefault(key, value)
            self._sessions_busy = False
            self._cond.notify_all()

    def head(self, timeout_s: float) -> Envelope | None:
        """The oldest envelope, marked in flight; waits up to ``timeout_s`` for one."""
        with self._cond:
            if not self._items and not self._sessions:
                self._cond.wait(timeout_s)
            self._inflight = self._items[0] if self._items else None
            return self._inflight

    def done(self, env: Envelope) -> None:
        """``env`` reached the broker on every target: forget it."""
        with self._cond:
            if self._items and self._items[0] is env:
                self._items.popleft()
                self._events -= env.count
            self._inflight = None
            self._cond.notify_all()

    def requeue_front(self, envelopes: list[Envelope]) -> None:
        """Put already-sent envelopes back at the head, in their order, to be sent again.

        Used after a broker outage for the batches published just before it (see
        :class:`~workers.ingester.publisher.Publisher`); they count toward the bound like
        any other envelope and are never dropped ahead of older unsent ones.
        """
        for env in envelopes:
            env.meta["replay"] = True
        self.put_front(envelopes)

    def put_front(self, envelopes: list[Envelope]) -> None:
        """Put envelopes at the head, in their order (a standby's held batches when it
        takes over come before what it built since)."""
        if not envelopes:
            return
        with self._cond:
            for env in reversed(envelopes):
                env.sent = 0
                self._items.appendleft(env)
                self._events += env.count
            self._cond.notify()

    def take_all(self, timeout_s: float) -> list[Envelope]:
        """Remove and return every queued envelope (a standby holds them instead of
        sending); waits up to ``timeout_s`` for one."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout_s)
            taken = list(self._items)
            self._items.clear()
            self._events = 0
            self._inflight = None
            self._cond.notify_all()
            return taken

    def release(self) -> None:
        """The in-flight send failed; the envelope stays at the head and may be dropped."""
        with self._cond:
            self._inflight = None

    def wait_empty(self, timeout_s: float) -> bool:
        """Block until everything queued was sent, or the timeout; True if empty."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not (self._items or self._sessions or self._sessions_busy),
                timeout=timeout_s,
            )

    def remaining(self) -> list[Envelope]:
        """What is still queued (for loss accounting at shutdown)."""
        with self._cond:
            return list(self._items)

    @property
    def depth(self) -> int:
        """Events waiting, including any in flight."""
        with self._cond:
            return self._events

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
