"""The WebSocket loop: connect, subscribe from the registry, read, watch, reconnect.

Contract: :meth:`Connection.run` blocks in the calling thread until ``stop`` is set, and
returns within about ``MAX_WAIT_S`` of that (plus a close handshake bounded by
``CLOSE_TIMEOUT_S``). It never raises for anything the network or the exchange does:
refused connects, resets, silent 1006 closes, error frames, dead sockets all end in a
reconnect under :class:`ReconnectPolicy`. A socket is declared dead when no pong answers
a ping within ``pong_timeout_s``, or when ``activeAssetCtx`` — pushed about once a second
per coin even on idle markets — is silent for ``stream_silence_s`` after being
acknowledged. ``trades`` silence is never a signal: quiet coins trade rarely.

Frames are handed to the :class:`FrameSink` on this thread (see ``pipeline`` for why).
Between frames the loop wakes at least every ``MAX_WAIT_S`` for pings, paced subscribes,
batch deadlines and the stop flag.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import orjson
import websocket

from runtime.clock import Clock
from runtime.hyperliquid.protocol import ParsedFrame
from runtime.metrics import CONNECTED, RECONNECTS, SERVER_ERRORS, Metrics
from workers.ingester.backoff import ReconnectPolicy
from workers.ingester.subscriptions import SubscriptionRegistry, subscribe_message
from workers.ingester.throttle import LogThrottle

log = logging.getLogger(__name__)

MAX_WAIT_S = 0.25
MIN_WAIT_S = 0.002
CLOSE_TIMEOUT_S = 1.0
SUSPECT_WINDOW_S = 2.0  # a close this soon after a subscribe points at that subscribe
_PING = orjson.dumps({"method": "ping"})


class FrameSink(Protocol):
    def on_connected(self) -> None: ...

    def on_frame(self, raw: bytes, received_ms: int) -> ParsedFrame: ...

    def on_disconnected(self, reason: str) -> None: ...

    def on_healthy(self, received_ms: int) -> None:
        """Every subscription acknowledged and data flowing on this connection."""
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
        self.connected = False
        self.last_loop = clock.monotonic()  # liveness: the loop moved at this time

    @property
    def subscribed(self) -> bool:
        return self.connected and self._registry.all_acked

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self._policy.delay_s()
            if delay > 0:
                log.info("reconnecting in %.2f s", delay)
                if self._wait(stop, delay):
                    return
            self._policy.on_attempt()
            try:
                ws = websocket.create_connection(
                    self._url, timeout=self._connect_timeout_s, skip_utf8_validation=True
                )
            except (websocket.WebSocketException, OSError) as exc:
                self._throttle.log(
                    logging.WARNING, "connect", "connect to %s failed: %s", self._url, exc
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
            self._sink.tick()
            left = end - self._clock.monotonic()
            if left <= 0:
                return False
            stop.wait(min(left, MAX_WAIT_S))
        return True

    def _session(self, ws: websocket.WebSocket, stop: threading.Event) -> str:
        self._policy.on_connected()
        self._registry.start_connection()
        self.connected = True
        log.info(
            "connected to %s; subscribing to %d streams", self._url, len(self._registry.desired)
        )
        self._sink.on_connected()
        try:
            reason = self._serve(ws, stop)
        except SocketDead as exc:
            reason = str(exc)
        except (websocket.WebSocketException, OSError) as exc:
            log.warning("socket error: %s: %s", type(exc).__name__, exc)
            reason = "socket_error"
        finally:
            self.connected = False
            self._metrics.gauge(CONNECTED).set(0)
        self._close(ws)
        if reason != "shutdown":
            log.warning("connection ended: %s", reason)
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
        now = clock.monotonic()
        next_ping = now + self._ping_interval_s
        ping_out: float | None = None  # oldest unanswered ping
        last_frame = now
        ctx_watch: float | None = None  # when activeAssetCtx silence starts to count
        last_ctx = now
        last_sub: float | None = None
        healthy = False  # subscribed and delivering: tells the reconnect policy once
        while True:
            if stop.is_set():
                return "shutdown"
            now = clock.monotonic()
            self.last_loop = now
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
            if ctx_watch is not None and now - max(last_ctx, ctx_watch) > self._silence_s:
                raise SocketDead("silence")
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
                if pf.channel == "activeAssetCtx":
                    last_ctx = last_frame
                if not healthy and self._registry.all_acked:
                    healthy = True
                    self._policy.on_healthy()
                    sink.on_healthy(clock.time_ms())
            elif kind == "pong":
                ping_out = None
            elif kind == "ack":
                if self._on_ack(pf) and ctx_watch is None:
                    ctx_watch = last_frame
            elif kind == "error":
                self._on_error(pf)

    def _wait_s(self, now: float, *deadlines: float) -> float:
        wait = min(MAX_WAIT_S, *(d - now for d in deadlines))
        send_wait = self._registry.send_wait_s()
        if send_wait is not None:
            wait = min(wait, send_wait)
        return max(MIN_WAIT_S, wait)

    def _send_subscriptions(self, ws: websocket.WebSocket) -> bool:
        sent = False
        while (sub := self._registry.next_to_send()) is not None:
            ws.send(subscribe_message(sub))
            sent = True
        return sent

    def _on_ack(self, pf: ParsedFrame) -> bool:
        """Record an ack; True if it acknowledged an activeAssetCtx subscription."""
        if pf.ack_method != "subscribe":
            return False
        sub = self._registry.on_ack(pf.ack)
        if sub is None:
            log.debug("ack for a subscription we did not send: %s", pf.ack)
            return False
        self._mark_subscribed()
        return sub.get("type") == "activeAssetCtx"

    def _on_error(self, pf: ParsedFrame) -> None:
        message = pf.error or ""
        self._metrics.counter(SERVER_ERRORS).inc()
        if self._registry.on_error(message) is not None:
            self._mark_subscribed()
            return
        self._throttle.log(
            logging.WARNING, f"error:{message[:40]}", "exchange error frame: %s", message
        )

    def _mark_subscribed(self) -> None:
        if self._registry.all_acked:
            self._metrics.gauge(CONNECTED).set(1)
            log.info("subscribed: %d streams acknowledged", self._registry.acked_count())

    def _closed(self, reason: str, last_sub: float | None) -> str:
        # The exchange closes the whole socket, without an error frame, on a bad
        # subscription (reference §1.7): name the ones still unacknowledged.
        pending = self._registry.pending()
        recent = last_sub is not None and self._clock.monotonic() - last_sub < SUSPECT_WINDOW_S
        if pending and recent:
            names = ", ".join(orjson.dumps(s).decode() for s in pending[:20])
            log.warning("socket closed right after subscribing; unacknowledged: %s", names)
        return reason
