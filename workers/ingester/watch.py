"""Silence watch for the streams that push on a steady cadence, one socket at a time.

Full-state channels push whether or not anything changed: ``activeAssetCtx`` about once a
second per coin, ``allMids`` every 2-5 s (reference §2.2, §2.3). Their silence therefore
means something; ``trades`` and ``userFills`` silence does not (a quiet coin trades
rarely), so those are never watched. ``clearinghouseState`` is a full-state channel too
(§1.8) and the simulator pushes it every second, but the reference gives no measured
cadence for it: it is watched with a conservative period so that a slow real cadence is
not mistaken for silence.

Two verdicts, checked in this order by the socket loop:

- :meth:`StreamWatch.dead`: no watched stream has delivered for the threshold of the
  fastest one (see below; ``silence_s`` for ``activeAssetCtx`` unless that is under three
  seconds), counted from the first acknowledgement of one: the socket is dead, reconnect
  — what the loop always did for ``activeAssetCtx``. A socket carrying only slower streams
  (wallets and ``allMids``) waits for their longer threshold: a slow cadence is not a dead
  socket.
- :meth:`StreamWatch.due`: one stream has been silent for its threshold, ``silence_s`` or
  :data:`SLACK_PERIODS` of its cadence, whichever is longer, and *another* watched stream
  delivered after that threshold passed: the socket is alive and only this stream is not.
  It is to be unsubscribed and subscribed again; its clock restarts then, so a stream that
  stays silent is retried once per threshold, not on every loop. Requiring a delivery
  after the threshold keeps a socket that is going silent as a whole (a stall) from
  resubscribing its streams one by one before it is declared dead.

A stream stays in :attr:`StreamWatch.silent` from the moment it is found silent until it
delivers again. Not thread-safe: one per socket loop; :meth:`silent_names` may be read
from another thread (it copies under the GIL).
"""

from __future__ import annotations

from typing import Final

from runtime.hyperliquid.protocol import ParsedFrame
from workers.ingester.subscriptions import Subscription

# Expected seconds between pushes per watched channel.
CADENCE_S: Final[dict[str, float]] = {
    "activeAssetCtx": 1.0,
    "allMids": 5.0,
    "clearinghouseState": 10.0,
}
SLACK_PERIODS: Final = 3  # missing this many pushes in a row is not jitter


def watched(sub: Subscription) -> bool:
    return sub.get("type") in CADENCE_S


StreamKey = tuple[str, str]  # (channel, coin or user or "")


def stream_key(sub: Subscription) -> StreamKey:
    return str(sub.get("type")), str(sub.get("coin") or sub.get("user") or "")


def frame_key(pf: ParsedFrame) -> StreamKey | None:
    """The stream a data frame belongs to, for the watched channels (else None). Cheap:
    called for every data frame."""
    channel = pf.channel
    if channel == "activeAssetCtx" or channel == "clearinghouseState":
        return None if pf.stream_key is None else (channel, pf.stream_key)
    if channel == "allMids":
        return (channel, "")
    return None


def stream_name(sub: Subscription) -> str:
    """``channel:coin`` / ``channel:user`` / ``channel``: short, for logs and health."""
    channel, key = stream_key(sub)
    return f"{channel}:{key}" if key else channel


class StreamWatch:
    def __init__(self, silence_s: float) -> None:
        self.silence_s = silence_s
        self._subs: dict[StreamKey, Subscription] = {}
        self._last: dict[StreamKey, float] = {}  # last delivery (or ack, or resubscribe)
        self._threshold: dict[StreamKey, float] = {}
        self._newest: float | None = None  # newest delivery of any watched stream
        self._dead_after = silence_s
        self.silent: dict[StreamKey, Subscription] = {}

    def threshold(self, sub: Subscription) -> float:
        return max(self.silence_s, SLACK_PERIODS * CADENCE_S[str(sub.get("type"))])

    def start_connection(self) -> None:
        self._subs.clear()
        self._last.clear()
        self._threshold.clear()
        self._newest = None
        self._dead_after = self.silence_s
        self.silent.clear()

    def _thresholds_changed(self) -> None:
        self._dead_after = min(self._threshold.values(), default=self.silence_s)

    def acked(self, sub: Subscription, now: float) -> None:
        """``sub`` was acknowledged: its silence counts from now (watched channels only)."""
        if not watched(sub):
            return
        key = stream_key(sub)
        self._subs[key] = sub
        self._last[key] = now
        self._threshold[key] = self.threshold(sub)
        self._thresholds_changed()
        if self._newest is None:
            self._newest = now  # the socket's silence counts from its first watched ack

    def delivered(self, pf: ParsedFrame, now: float) -> None:
        """A data frame: if it belongs to a watched stream, that stream is alive."""
        key = frame_key(pf)
        if key is None or key not in self._last:
            return  # not watched, not acknowledged here (yet), or dropped
        self._last[key] = now
        self._newest = now
        self.silent.pop(key, None)

    def forget(self, sub: Subscription) -> None:
        """No longer subscribed (dropped from the registry)."""
        key = stream_key(sub)
        self._subs.pop(key, None)
        self._last.pop(key, None)
        self._threshold.pop(key, None)
        self.silent.pop(key, None)
        self._thresholds_changed()

    def dead(self, now: float) -> bool:
        """Every watched stream silent past the fastest one's threshold: the socket itself
        is gone."""
        return self._newest is not None and now - self._newest > self._dead_after

    def due(self, now: float) -> list[Subscription]:
        """Streams silent past their threshold while another delivered since; each is
        marked silent and its clock restarted (the caller resubscribes it)."""
        newest = self._newest
        if newest is None:
            return []
        out = []
        for key, last in self._last.items():
            overdue_at = last + self._threshold[key]
            if now > overdue_at and newest > overdue_at:
                out.append(self._subs[key])
        for sub in out:
            key = stream_key(sub)
            self._last[key] = now
            self.silent[key] = sub
        return out

    def silent_names(self) -> list[str]:
        return sorted(stream_name(sub) for sub in list(self.silent.values()))
