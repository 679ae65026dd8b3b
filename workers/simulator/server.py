"""The simulator's HTTP face: one aiohttp app, one port.

Routes:

* ``GET /ws``: the WebSocket (no permessage-deflate, no server pings, like the exchange).
  A connection that sends nothing for ``idle_timeout`` seconds is dropped without a close
  frame (reference §1.5 says 60 s; the client must ping).
* ``POST /info``: :class:`~workers.simulator.info.InfoService`.
* ``POST /_sim/fault`` and ``GET /_sim/stats``: the test-only control surface
  (``{"kind":"drop"}``, ``{"kind":"stall","seconds":3}``, ``{"kind":"malformed","count":5}``,
  ``{"kind":"duplicate"}``); a real exchange has no such routes.
* ``POST /_sim/liquidate`` ``{"user": "0x…", "coin": "BTC"}`` (test-only): liquidate a
  simulated wallet's position at the mark (``Exchange.liquidate``); answers the fill, or
  404 when that wallet holds no such position.

:class:`AppServer` binds the app (port 0 picks a free port) and owns its lifecycle.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import WSMsgType, web

from runtime.clock import Clock
from workers.simulator.config import SimulatorConfig
from workers.simulator.exchange import Exchange
from workers.simulator.faults import FaultRequest, FaultRequestError

log = logging.getLogger(__name__)

EXCHANGE = web.AppKey("exchange", Exchange)
_MAX_CLIENT_FRAME = 1 << 20


async def _ws(request: web.Request) -> web.StreamResponse:
    exchange = request.app[EXCHANGE]
    # timeout bounds how long a close waits for the client's close reply on shutdown.
    ws = web.WebSocketResponse(
        timeout=1.0, autoping=True, compress=False, max_msg_size=_MAX_CLIENT_FRAME
    )
    if not ws.can_prepare(request).ok:
        return web.Response(status=400, text="Expected a WebSocket upgrade")
    await ws.prepare(request)
    conn = exchange.connect(ws, request.transport, request.remote or "unknown")
    idle = exchange.config.idle_timeout_s
    try:
        while not conn.closed:
            try:
                msg = await ws.receive(timeout=idle)
            except TimeoutError:
                exchange.stats.idle_closes += 1
                conn.abort()
                break
            if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                if not exchange.handle(conn, msg.data):
                    conn.abort()
                    break
            else:  # CLOSE, CLOSING, CLOSED or ERROR: the socket is done
                break
    finally:
        exchange.disconnect(conn)
    return ws


async def _info(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE]
    exchange.stats.info_requests += 1
    status, body, content_type, weight = exchange.info.answer_weighed(await request.read())
    exchange.stats.add_info_weight(weight, exchange.clock.time_ms())
    return web.Response(body=body, status=status, content_type=content_type)


async def _fault(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE]
    try:
        fault = FaultRequest.parse(orjson.loads(await request.read()))
    except (orjson.JSONDecodeError, FaultRequestError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(exchange.faults.apply(fault))


async def _liquidate(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE]
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return web.json_response({"error": f"not JSON: {exc}"}, status=400)
    user, coin = (body.get("user"), body.get("coin")) if isinstance(body, dict) else (None, None)
    if not isinstance(user, str) or not isinstance(coin, str):
        return web.json_response({"error": "liquidate needs user and coin strings"}, status=400)
    fill = exchange.liquidate(user, coin)
    if fill is None:
        return web.json_response({"error": f"{user} holds no {coin} position"}, status=404)
    return web.json_response(fill)


async def _stats(request: web.Request) -> web.Response:
    exchange = request.app[EXCHANGE]
    body = exchange.stats.snapshot()
    body["uptime_s"] = (exchange.clock.time_ms() - exchange.started_ms) / 1000.0
    body["trades_per_block"] = exchange.config.effective_trades_per_block
    body["block_ms"] = exchange.config.effective_block_ms
    return web.json_response(body)


def build_app(exchange: Exchange) -> web.Application:
    app = web.Application(client_max_size=_MAX_CLIENT_FRAME)
    app[EXCHANGE] = exchange
    app.router.add_get("/ws", _ws)
    app.router.add_post("/info", _info)
    app.router.add_post("/_sim/fault", _fault)
    app.router.add_post("/_sim/liquidate", _liquidate)
    app.router.add_get("/_sim/stats", _stats)
    return app


def _url_host(host: str) -> str:
    # A wildcard bind is reachable on loopback; print something a client can dial.
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class AppServer:
    """One bound simulator: exchange + app + listening socket, in the current event loop."""

    def __init__(self, config: SimulatorConfig, clock: Clock | None = None) -> None:
        self.exchange = Exchange(config, clock)
        self.config = config
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and start accepting; fixes the exchange's time origin."""
        self._runner = web.AppRunner(
            build_app(self.exchange), handle_signals=False, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.exchange.begin()

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.config.host)}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.config.host)}:{self.port}/ws"

    @property
    def info_url(self) -> str:
        return f"{self.base_url}/info"

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the exchange's loops until ``stop`` is set."""
        await self.exchange.run(stop)

    async def close(self, timeout: float = 5.0) -> None:
        """Flush and close clients, close the ground truth, release the port."""
        try:
            await self.exchange.shutdown(timeout)
        finally:
            self.exchange.close_recorder()
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None
