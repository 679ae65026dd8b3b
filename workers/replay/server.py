"""``hyperwatch replay --into ws``: the recorded frames on a local WebSocket that a real
ingester connects to (HL_WS_URL), so the whole live path runs on recorded input.

Contract: one aiohttp app on one port (``/ws`` and ``/info``), like the simulator's.
- The client's own traffic is answered as the exchange would: ``ping`` → pong, every
  ``subscribe`` / ``unsubscribe`` → its acknowledgement at once. The recorded answers to the
  recording ingester's messages (acks, pongs, errors, post replies) are not forwarded; every
  other frame is, verbatim (malformed ones too: they were received live), to every
  connected client, at the recorded pace times ``--speed`` (or ``--max``).
- Playback starts once a client has subscribed (and no subscribe came for
  ``SETTLE_S``), pauses while no client is connected and resumes at once when one is back.
- A recorded close (``C``) or hole (``D``) aborts every client's socket without a close
  frame, as the exchange drops one: the ingester reconnects and records the gap itself.
- ``POST /info`` answers ``meta`` with the coins the recording holds (the ingester checks
  COINS against it at start); anything else is a 400, so healing does not take a replay's
  answer for the exchange's.
- When the records are exhausted it serves ``linger_s`` more, then closes every client and
  stops.

Run the ingester with its own INGESTER_NAME (not the live feed's): it takes the lease and
journals gaps of its feed like any ingester, and must not share either with a live one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import orjson
from aiohttp import WSMsgType, web

from runtime.recording import Record
from workers.replay.player import Pacer

log = logging.getLogger(__name__)

SETTLE_S = 0.3
# Recorded answers to the recording client's own messages: the live client gets its own.
_ANSWERS = (
    b'{"channel":"subscriptionResponse"',
    b'{"channel":"pong"',
    b'{"channel":"error"',
    b'{"channel":"post"',
)


@dataclass
class ServeResult:
    frames: int = 0  # frames sent (to at least one client)
    skipped: int = 0  # recorded answers not forwarded
    drops: int = 0  # recorded closes and holes played as dropped sockets


class ReplayServer:
    def __init__(
        self,
        records: Iterable[Record],
        coins: list[str],
        pacer: Pacer,
        host: str = "127.0.0.1",
        port: int = 0,
        linger_s: float = 2.0,
    ) -> None:
        self._records: Iterator[Record] = iter(records)
        self._coins = coins
        self._pacer = pacer
        self._host = host
        self._port = port
        self._linger_s = linger_s
        # Each client's socket and its TCP transport (to drop it without a close frame).
        self._clients: dict[web.WebSocketResponse, asyncio.BaseTransport | None] = {}
        self._ready = asyncio.Event()  # a client is connected and subscribed
        self._last_subscribe = 0.0
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.result = ServeResult()

    @property
    def ws_url(self) -> str:
        return f"ws://{self._host}:{self.port}/ws"

    @property
    def info_url(self) -> str:
        return f"http://{self._host}:{self.port}/info"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        app.router.add_post("/info", self._info)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def play(self, stop: asyncio.Event) -> ServeResult:
        """Send every record (see the contract), then linger and close."""
        for record in self._records:
            if stop.is_set():
                break
            await self._wait_for_client(stop)
            if stop.is_set():
                break
            delay = self._pacer.delay(record.recv_ns)
            if delay > 0:
                await asyncio.sleep(delay)
            await self._play(record)
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._linger_s)
        await self.close()
        return self.result

    async def close(self) -> None:
        for ws in list(self._clients):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _wait_for_client(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        paused = False
        while not stop.is_set():
            settled = loop.time() - self._last_subscribe >= SETTLE_S
            if self._clients and self._ready.is_set() and settled:
                break
            paused = True
            await asyncio.sleep(0.05)
        if paused:
            self._pacer.restart()  # a pause is no reason to rush the records after it

    async def _play(self, record: Record) -> None:
        if record.kind == "F":
            if record.payload.startswith(_ANSWERS):
                self.result.skipped += 1
                return
            text = record.payload.decode(errors="replace")
            for ws in list(self._clients):
                if not ws.closed:
                    await ws.send_str(text)
            self.result.frames += 1
        elif record.kind in ("C", "D"):
            self.result.drops += 1
            self._drop_clients()

    def _drop_clients(self) -> None:
        for transport in list(self._clients.values()):
            if isinstance(transport, asyncio.Transport):
                transport.abort()  # no close frame: as the exchange drops a socket
        self._clients.clear()
        self._ready.clear()

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, compress=False)
        await ws.prepare(request)
        self._clients[ws] = request.transport
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                await self._answer(ws, msg.data)
        finally:
            self._clients.pop(ws, None)
            if not self._clients:
                self._ready.clear()
        return ws

    async def _answer(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if method == "ping":
            await ws.send_str('{"channel":"pong"}')
        elif method in ("subscribe", "unsubscribe"):
            ack = {"method": method, "subscription": message.get("subscription")}
            await ws.send_bytes(orjson.dumps({"channel": "subscriptionResponse", "data": ack}))
            if method == "subscribe":
                self._last_subscribe = asyncio.get_running_loop().time()
                self._ready.set()

    async def _info(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and body.get("type") == "meta" and not body.get("dex"):
            universe = [{"name": coin, "szDecimals": 0, "maxLeverage": 1} for coin in self._coins]
            return web.json_response({"universe": universe})
        return web.json_response({"error": "a replay serves only meta"}, status=400)
