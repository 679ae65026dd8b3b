"""The WebSocket loop: connect, subscribe from the registry, read, watch, reconnect.

Contract: :meth:`Connection.run` blocks in the calling thread until ``stop`` is set, and
returns within about ``MAX_WAIT_S`` of that (plus a close handshake bounded by
``CLOSE_TIMEOUT_S``). It never raises for anything the network or the exchange does:
refused connects, resets, silent 1006 closes, error frames, dead sockets all end in a
reconnect under :class:`ReconnectPolicy`. A socket is declared dead when no pong answers
a ping within ``pong_timeout_s``, or when every stream with a steady cadence on it
(``activeAssetCtx``, pushed about once a second per coin even on idle markets; ``allMids``;
``clearinghouseState``) is silent for ``stream_silence_s`` after being acknowledged. One
such stream silent while the others deliver is resubscribed instead (unsubscribe, then
subscribe, paced like every message), counted per channel and shown in health: see
``watch``. ``trades`` silence is never a signal: quiet coins trade rarely.

A process may run several connections, each on its own thread with its own registry and
sink; they share the subscribe bucket and the connect window (per-IP limits). Other
threads change what one subscribes only through :meth:`Connection.add` and
:meth:`Connection.drop`, applied by its loop.

Frames are handed to the :class:`FrameSink` on this thread (see ``pipeline`` for why).
Between frames the loop wakes at least every ``MAX_WAIT_S`` for pings, paced subscribes,
batch deadlines, subscription changes and the stop flag.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Protocol

import orjson
import websocket

from runtime.clock import Clock
from runtime.hyperliquid.protocol import ParsedFrame
from runtime.metrics import CONNECTED, RECONNECTS, SERVER_ERRORS, STREAM_RESUBSCRIBES, Metrics
from workers.ingester.backoff import ReconnectPolicy
from workers.ingester.subscriptions import (
    UNSUBSCRIBE,
    Subscription,
    SubscriptionRegistry,
    already_unsubscribed,
    subscribe_message,
)
from workers.ingester.throttle import LogThrottle
from workers.ingester.watch import StreamWatch, stream_name

log = logging.getLogger(__name__)

MAX_WAIT_S = 0.25
MIN_WAIT_S = 0.002
CLOSE_TIMEOUT_S = 1.0
SUSPECT_WINDOW_S = 2.0  # a close this soon after a subscribe points at that subscribe
WATCH_EVERY_S = 0.25  # silent streams are looked for this often, not on every frame
_PING = orjson.dumps({"method": "ping"})


class FrameSink(Protocol):
    def on_connected(self) -> None: ...

    def on_frame(self, raw: bytes, received_ms: int) -> ParsedFrame: ...

    def on_disconnected(self, reason: str) -> None: ...

    def on_healthy(self, received_ms: int) -> None:
        """Every subscription acknowledged and data flowing on this connection."""
        ...

    def forget(self, sub: Subscription) -> None:
        """``sub`` was dropped for good (a delisting)."""
        ...

    def tick(self) -> float:
        """Do time-based work; return the monotonic time it next wants a call."""
        ...


class SocketDead(Exception):
    """This connection is over; ``str()`` is the reason label (bounded set)."""


class Connection:
    def __init__(
        self,
        url: str,
        registry: SubscriptionRegistry,
        policy: ReconnectPolicy,
        sink: FrameSink,
        clock: Clock,
        metrics: Metrics,
        ping_interval_s: float,
        pong_timeout_s: float,
        stream_silence_s: float,
        connect_timeout_s: float = 10.0,
        name: str = "",
        on_state: Callable[[], None] | None = None,
    ) -> None:
        self._url = url
        self._registry = registry
        self._policy = policy
        self._sink = sink
        self._clock = clock
        self._metrics = metrics
        self._ping_interval_s = ping_interval_s
        self._pong_timeout_s = pong_timeout_s
        self._silence_s = stream_silence_s
        self._connect_timeout_s = connect_timeout_s
        self._throttle = LogThrottle(log, clock)
        # Several sockets log side by side: a tag tells them apart (none when alone).
        self.name = name
        self._tag = f"[{name}] " if name else ""
        self._on_state = on_state
        self._changes: queue.SimpleQueue[tuple[str, list[Subscription]]] = queue.SimpleQueue()
        self.watch = StreamWatch(stream_silence_s)
        self.connected = False
        self.last_loop = clock.monotonic()  # liveness: the loop moved at this time

    @property
    def subscribed(self) -> bool:
        return self.connected and self._registry.all_acked

    @property
    def registry(self) -> SubscriptionRegistry:
        return self._registry

    @property
    def silent_streams(self) -> list[str]:
        """Streams found silent and not delivering since (any thread may read this)."""
        return self.watch.silent_names()

    def add(self, subs: list[Subscription]) -> None:
        """Subscribe ``subs`` from now on, on the live socket too (any thread)."""
        self._changes.put(("add", list(subs)))

    def drop(self, subs: list[Subscription]) -> None:
        """Unsubscribe ``subs`` and forget them (any thread)."""
        self._changes.put(("drop", list(subs)))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self._policy.backoff_s()
            if delay > 0:
                log.info("%sreconnecting in %.2f s", self._tag, delay)
                if self._wait(stop, delay):
                    return
            # The connects-per-minute cap is per IP: every socket of the process takes its
            # slot from one shared window.
            while (limit_wait := self._policy.try_attempt()) > 0:
                log.info("%sconnects-per-minute cap reached: waiting %.2f s", self._tag, limit_wait)
                if self._wait(stop, limit_wait):
                    return
            try:
                ws = websocket.create_connection(
                    self._url, timeout=self._connect_timeout_s, skip_utf8_validation=True
                )
            except (websocket.WebSocketException, OSError) as exc:
                self._throttle.log(
                    logging.WARNING,
                    "connect",
                    "%sconnect to %s failed: %s",
                    self._tag,
                    self._url,
                    exc,
                )
                self._policy.on_closed()
                self._metrics.counter(RECONNECTS).labels("connect_failed").inc()
                continue
            reason = self._session(ws, stop)
            if reason != "shutdown":
                self._metrics.counter(RECONNECTS).labels(reason).inc()

    def _wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait while keeping the sink's timers (batch flushes) and liveness moving."""
        end = self._clock.monotonic() + seconds
        while not stop.is_set():
            self.last_loop = self._clock.monotonic()
            self._apply_changes()
            self._sink.tick()
            left = end - self._clock.monotonic()
            if left <= 0:
                return False
            stop.wait(min(left, MAX_WAIT_S))
        return True

    def _session(self, ws: websocket.WebSocket, stop: threading.Event) -> str:
        self._policy.on_connected()
        self._apply_changes()
        self._registry.start_connection()
        self.watch.start_connection()
        self.connected = True
        log.info(
            "%sconnected to %s; subscribing to %d streams",
            self._tag,
            self._url,
            len(self._registry.desired),
        )
        self._sink.on_connected()
        try:
            reason = self._serve(ws, stop)
        except SocketDead as exc:
            reason = str(exc)
        except (websocket.WebSocketException, OSError) as exc:
            log.warning("%ssocket error: %s: %s", self._tag, type(exc).__name__, exc)
            reason = "socket_error"
        finally:
            self.connected = False
            self._state_changed()
        self._close(ws)
        if reason != "shutdown":
            log.warning("%sconnection ended: %s", self._tag, reason)
        self._sink.on_disconnected(reason)
        self._policy.on_closed()
        return reason

    def _close(self, ws: websocket.WebSocket) -> None:
        try:
            ws.close(status=websocket.STATUS_NORMAL, timeout=CLOSE_TIMEOUT_S)
        except (websocket.WebSocketException, OSError):
            ws.shutdown()  # the peer is gone already; just drop our end

    def _serve(self, ws: websocket.WebSocket, stop: threading.Event) -> str:
        clock = self._clock
        sink = self._sink
        watch = self.watch
        now = clock.monotonic()
        next_ping = now + self._ping_interval_s
        next_watch = now + WATCH_EVERY_S
        ping_out: float | None = None  # oldest unanswered ping
        last_frame = now
        last_sub: float | None = None
        healthy = False  # subscribed and delivering: tells the reconnect policy once
        while True:
            if stop.is_set():
                return "shutdown"
            now = clock.monotonic()
            self.last_loop = now
            self._apply_changes()
            if self._send_subscriptions(ws):
                last_sub = now
            if now >= next_ping:
                ws.send(_PING)
                next_ping = now + self._ping_interval_s
                if ping_out is None:
                    ping_out = now
            # Any inbound frame proves the socket alive: under a burst the pong waits behind
            # megabytes of data in the ordered stream, and that is not a dead socket.
            if ping_out is not None and now - max(ping_out, last_frame) > self._pong_timeout_s:
                raise SocketDead("pong_timeout")
            if watch.dead(now):
                raise SocketDead("silence")
            if now >= next_watch:
                next_watch = now + WATCH_EVERY_S
                self._resubscribe_silent(now)
            sink_due = sink.tick()
            ws.settimeout(self._wait_s(now, next_ping, sink_due))
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException:
                return self._closed("closed", last_sub)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return self._closed("server_close", last_sub)
            pf = sink.on_frame(data, clock.time_ms())
            last_frame = clock.monotonic()
            kind = pf.kind
            if kind == "data":
                watch.delivered(pf, last_frame)
                if not healthy and self._registry.all_acked:
                    healthy = True
                    self._policy.on_healthy()
                    sink.on_healthy(clock.time_ms())
            elif kind == "pong":
                ping_out = None
            elif kind == "ack":
                self._on_ack(pf, last_frame)
            elif kind == "error":
                self._on_error(pf, last_frame)

    def _resubscribe_silent(self, now: float) -> None:
        for sub in self.watch.due(now):
            if not self._registry.resubscribe(sub):
                continue
            channel = str(sub.get("type"))
            self._metrics.counter(STREAM_RESUBSCRIBES).labels(channel).inc()
            self._throttle.log(
                logging.WARNING,
                f"silent:{channel}",
                "%s%s silent for %.0f s while the socket delivers: resubscribing",
                self._tag,
                stream_name(sub),
                self.watch.threshold(sub),
            )

    def _apply_changes(self) -> None:
        """Subscriptions added or dropped by other threads (new listings, delistings)."""
        changes = self._changes
        while not changes.empty():
            op, subs = changes.get_nowait()
            for sub in subs:
                if op == "add":
                    self._registry.desire(sub)
                elif self._registry.undesire(sub):
                    self.watch.forget(sub)
                    self._sink.forget(sub)

    def _wait_s(self, now: float, *deadlines: float) -> float:
        wait = min(MAX_WAIT_S, *(d - now for d in deadlines))
        send_wait = self._registry.send_wait_s()
        if send_wait is not None:
            wait = min(wait, send_wait)
        return max(MIN_WAIT_S, wait)

    def _send_subscriptions(self, ws: websocket.WebSocket) -> bool:
        sent = False
        while (message := self._registry.next_message()) is not None:
            method, sub = message
            ws.send(subscribe_message(sub, method))
            sent = True
        return sent

    def _on_ack(self, pf: ParsedFrame, now: float) -> None:
        if pf.ack_method == UNSUBSCRIBE:
            log.debug("%sunsubscribed: %s", self._tag, pf.ack)
            return
        if pf.ack_method != "subscribe":
            return
        sub = self._registry.on_ack(pf.ack)
        if sub is None:
            log.debug("%sack for a subscription we did not send: %s", self._tag, pf.ack)
            return
        self.watch.acked(sub, now)
        self._mark_subscribed()

    def _on_error(self, pf: ParsedFrame, now: float) -> None:
        message = pf.error or ""
        self._metrics.counter(SERVER_ERRORS).inc()
        sub = self._registry.on_error(message)
        if sub is not None:
            self.watch.acked(sub, now)
            self._mark_subscribed()
            return
        if already_unsubscribed(message):
            # A resubscribe of a stream the exchange had already dropped: the subscribe
            # that follows it restores the stream.
            log.debug("%s%s", self._tag, message)
            return
        self._throttle.log(
            logging.WARNING,
            f"error:{message[:40]}",
            "%sexchange error frame: %s",
            self._tag,
            message,
        )

    def _mark_subscribed(self) -> None:
        if self._registry.all_acked:
            self._state_changed()
            log.info(
                "%ssubscribed: %d streams acknowledged", self._tag, self._registry.acked_count()
            )

    def _state_changed(self) -> None:
        if self._on_state is not None:
            self._on_state()
        else:
            self._metrics.gauge(CONNECTED).set(1 if self.subscribed else 0)

    def _closed(self, reason: str, last_sub: float | None) -> str:
        # The exchange closes the whole socket, without an error frame, on a bad
        # subscription (reference §1.7): name the ones still unacknowledged.
        pending = self._registry.pending()
        recent = last_sub is not None and self._clock.monotonic() - last_sub < SUSPECT_WINDOW_S
        if pending and recent:
            names = ", ".join(orjson.dumps(s).decode() for s in pending[:20])
            log.warning(
                "%ssocket closed right after subscribing; unacknowledged: %s", self._tag, names
            )
        return reason
