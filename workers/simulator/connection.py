"""One client socket: an ordered outbound queue, its writer, its subscriptions, its faults.

Everything the server sends to a client goes through :meth:`Connection.send`, a FIFO, so an
ack queued before a subscription's first data frame always reaches the client first.
Frames are pre-serialised bytes shared by every subscriber; the writer task sends them
as text frames. A client that stops reading cannot grow memory without bound: once
``max_queue_bytes`` are waiting, the connection is aborted as a slow consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from typing import Any

from aiohttp import WSMsgType, web

from runtime.clock import Clock
from workers.simulator.protocol import Subscription
from workers.simulator.stats import Stats


class Connection:
    """State of one WebSocket client. Owned by the server's event loop."""

    def __init__(
        self,
        conn_id: int,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        peer: str,
        stats: Stats,
        max_queue_bytes: int,
        clock: Clock,
    ) -> None:
        self.id = conn_id
        self.ws = ws
        self.peer = peer
        self.subscriptions: dict[str, Subscription] = {}
        self.topics: Counter[str] = Counter()
        self.last_trades_frame: bytes | None = None
        self.stalled_until = 0.0
        self.closed = False
        self._transport = transport
        self._stats = stats
        self._max_queue_bytes = max_queue_bytes
        self._clock = clock
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"sim-writer-{self.id}"
        )

    def stalled(self) -> bool:
        return self.stalled_until > self._clock.monotonic()

    def stall(self, until: float) -> None:
        """Send nothing until monotonic time ``until``; frames not yet written are never sent."""
        self.stalled_until = max(self.stalled_until, until)
        self._queue.clear()
        self._queued_bytes = 0
        self._idle.set()

    def send(self, frame: bytes) -> bool:
        """Queue one text frame; False when it was not queued (stalled or closed)."""
        if self.closed:
            return False
        if self.stalled():
            self._stats.frames_dropped_stalled += 1
            return False
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        self._idle.clear()
        self._wake.set()
        if self._queued_bytes > self._max_queue_bytes:
            self._stats.slow_consumer_closes += 1
            self.abort()
            return False
        return True

    def abort(self) -> None:
        """Drop the socket now, without a close frame (what the client sees as 1006)."""
        if self.closed:
            return
        self.release()
        self._abort_transport()

    def release(self) -> None:
        """The socket is finished (the client closed or vanished): stop writing, keep the transport."""
        self.closed = True
        self._queue.clear()
        self._queued_bytes = 0
        self._idle.set()
        self._wake.set()

    async def finish(self, timeout: float, code: int, message: bytes) -> None:
        """Send what is queued (up to ``timeout``), then close with ``code``."""
        if self.closed:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if not self.closed:
            self.closed = True
            self._wake.set()
            try:
                await asyncio.wait_for(self.ws.close(code=code, message=message), timeout + 1.0)
            except (TimeoutError, ConnectionError, RuntimeError):
                self._abort_transport()

    def _abort_transport(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    async def _write_loop(self) -> None:
        queue = self._queue
        stats = self._stats
        send_frame = self.ws.send_frame
        try:
            while not self.closed:
                if not queue:
                    self._idle.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                frame = queue.popleft()
                self._queued_bytes -= len(frame)
                await send_frame(frame, WSMsgType.TEXT)
                stats.frames_sent += 1
                stats.bytes_sent += len(frame)
        except (ConnectionError, RuntimeError):
            # The peer went away mid-write; the reader side notices and cleans up.
            self.closed = True
        finally:
            self._idle.set()

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "peer": self.peer,
            "subscriptions": [s.echo for s in self.subscriptions.values()],
        }
