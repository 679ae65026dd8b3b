"""The simulated exchange: trade source, state, subscriptions and the loops that push data.

Contract:

* :meth:`Exchange.handle` answers one client frame on one connection (pong, ack + first
  frame, error string, post reply) and returns False when the exchange would drop the
  socket silently (unknown or mis-cased coin).
* On subscribe, the ack is queued first and then the channel's first frame: ``trades``
  replays the coin's last ``replay_trades`` trades with no flag (possibly ``[]``);
  ``userFills`` sends ``isSnapshot: true`` with recent fills; the state channels
  (``activeAssetCtx``, ``allMids``, ``clearinghouseState``) send their current state.
* :meth:`Exchange.run` releases blocks on schedule and, per block: appends the trades to
  each coin's recent-trades window, sends one ``trades`` frame per coin (serialised once,
  shared by all subscribers), records the ground truth, derives simulated users' fills
  and pushes ``userFills`` and ``clearinghouseState`` to their subscribers; with an archive
  directory, hands the block and its fills to the archive writer's thread. The first block
  of each hour settles the hour's funding: a ``fundingHistory`` row per coin and the
  wallets' charges, at one rate. (Candles are folded by the block source as it makes the
  trades.) Contexts push every ``ctx_interval`` per coin, ``allMids`` every
  ``mids_interval``.
* ``--list-later COIN@S`` lists a coin mid-run, between the last block released before
  ``S`` seconds (block time) and the first at or after it: from then on it is in ``meta``
  and ``metaAndAssetCtxs``, accepts subscriptions (before, subscribing to it closes the
  socket silently, as for any unknown coin), trades and pushes contexts. The block index
  fixes the moment, so the same seed gives the same trades.
* :meth:`Exchange.shutdown` flushes queued frames to clients, closes them (1001) and
  closes the ground-truth file with its stop line and the archive's last hour file.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from typing import Any

import orjson
from aiohttp import web

from runtime.clock import SYSTEM_CLOCK, Clock
from workers.simulator.archive import ArchiveSink
from workers.simulator.cascade import CascadeBlocks
from workers.simulator.config import SimulatorConfig
from workers.simulator.connection import Connection
from workers.simulator.contexts import AssetContexts
from workers.simulator.groundtruth import GroundTruthWriter, ReplayBlocks
from workers.simulator.hub import Hub, Limits
from workers.simulator.info import InfoError, InfoService
from workers.simulator.injector import FaultInjector
from workers.simulator.ledger import Ledger
from workers.simulator.market import Block, Market, MarketView, Trade
from workers.simulator.protocol import (
    PONG,
    ParseError,
    Ping,
    Post,
    SilentClose,
    Subscribe,
    Subscription,
    Unsubscribe,
    ack,
    error,
    parse_request,
    post_response,
)
from workers.simulator.schedule import BlockSource, GeneratedBlocks
from workers.simulator.stats import Stats
from workers.simulator.universe import Universe, coin_spec

log = logging.getLogger(__name__)

_TRADES_PER_TURN = 20_000  # generate at most this many trades before letting writers run
_FLUSH_EVERY_S = 1.0
_HOUR_MS = 3_600_000
_SNAPSHOT_FILLS = 2000


class Exchange:
    """All simulator state behind the sockets. Owned by one event loop."""

    def __init__(self, config: SimulatorConfig, clock: Clock | None = None) -> None:
        config.validate()
        self.config = config
        self.clock = clock or SYSTEM_CLOCK
        self.stats = Stats()
        users = config.all_users
        self.source: BlockSource
        market: MarketView
        self._generator: Market | None = None
        if config.replay_path is not None:
            replay = ReplayBlocks(config.replay_path, config.coins, config.delisted)
            self.universe: Universe = replay.universe
            market = replay
            self.source = replay
        else:
            self.universe = Universe.build(config.coins, config.delisted)
            generator = Market(
                self.universe,
                seed=config.seed,
                trades_per_block=config.effective_trades_per_block,
                users=users,
                user_share=config.user_share,
                wallets=config.wallet_addresses,
            )
            market = generator
            self._generator = generator
            if config.cascade is not None:
                self.source = CascadeBlocks(
                    generator, config.effective_block_ms, 0, config.cascade, config.rate
                )
            else:
                self.source = GeneratedBlocks(generator, config.effective_block_ms, origin_ms=0)
        # Coins listed mid-run: (release time in ms of block time, token), soonest first.
        self._listings = sorted((seconds * 1000.0, token) for token, seconds in config.list_later)
        self.market = market
        self.contexts = AssetContexts(market, config.seed)
        self.ledger = Ledger(self.universe, users, fills_kept=config.fills_kept)
        window = max(1, config.replay_trades)
        self.recent: dict[str, deque[Trade]] = {
            s.name: deque(maxlen=window) for s in self.universe.specs
        }
        self.hub = Hub(
            self.stats,
            Limits(
                config.max_subscriptions, config.max_users_tracked, config.max_messages_per_minute
            ),
            self.clock,
        )
        self.recorder = GroundTruthWriter(config.record_path) if config.record_path else None
        # The ground truth as hourly archive files, written on a thread of its own.
        self.archive = (
            ArchiveSink(config.archive_dir, config.archive_level) if config.archive_dir else None
        )
        self.info = InfoService(
            self.universe, self.contexts, self.ledger, self.recent, self.clock.time_ms
        )
        self.faults = FaultInjector(
            self.hub,
            self.stats,
            self.recorder,
            self.clock,
            config.seed,
            config.faults,
        )
        self._trade_topics = {s.name: f"trades:{s.name}" for s in self.universe.specs}
        self._next_conn_id = 0
        self._funding_hour: int | None = None
        self.started_ms = 0

    # --- connections -------------------------------------------------------------------

    def connect(
        self, ws: web.WebSocketResponse, transport: asyncio.Transport | None, peer: str
    ) -> Connection:
        self._next_conn_id += 1
        conn = Connection(
            self._next_conn_id,
            ws,
            transport,
            peer,
            self.stats,
            self.config.max_queue_bytes,
            self.clock,
        )
        conn.start()
        self.hub.add(conn)
        return conn

    def disconnect(self, conn: Connection) -> None:
        """Forget a connection whose socket is finished (closed by either side)."""
        conn.release()
        self.hub.remove(conn)

    def handle(self, conn: Connection, frame: str | bytes) -> bool:
        """Answer one client frame; False means drop the socket silently."""
        self.stats.requests_received += 1
        if conn.stalled():
            self.stats.requests_ignored_stalled += 1
            return True
        refusal = self.hub.admit_message(conn)
        if refusal is not None:
            conn.send(refusal)
            return True
        request = parse_request(frame, self.universe)
        if isinstance(request, Ping):
            conn.send(PONG)
        elif isinstance(request, Subscribe):
            refused = self.hub.subscribe(conn, request.subscription)
            if refused is not None:
                conn.send(refused)
            else:
                conn.send(ack("subscribe", request.subscription))
                self._first_frame(conn, request.subscription)
        elif isinstance(request, Unsubscribe):
            refused = self.hub.unsubscribe(conn, request.subscription)
            conn.send(refused if refused is not None else ack("unsubscribe", request.subscription))
        elif isinstance(request, Post):
            conn.send(self._post(request))
        elif isinstance(request, ParseError):
            conn.send(error(request.message))
        elif isinstance(request, SilentClose):
            log.info(
                "connection %s: silent close (%s), as the exchange does", conn.id, request.reason
            )
            self.stats.silent_closes += 1
            return False
        return True

    def _post(self, request: Post) -> bytes:
        if request.kind == "action":
            return post_response(request.id, "error", "The simulator does not execute actions")
        try:
            data = self.info.answer(request.payload)
        except InfoError as exc:
            return post_response(request.id, "error", exc.message)
        kind = request.payload.get("type") if isinstance(request.payload, dict) else None
        return post_response(request.id, "info", {"type": kind, "data": data})

    def _first_frame(self, conn: Connection, sub: Subscription) -> None:
        if sub.type == "trades":
            assert sub.coin is not None
            count = self.config.replay_trades
            replay = list(self.recent[sub.coin])[-count:] if count else []
            frame = orjson.dumps({"channel": "trades", "data": replay})
            conn.send(frame)
            conn.last_trades_frame = frame
        elif sub.type == "activeAssetCtx":
            assert sub.coin is not None
            conn.send(self._ctx_frame(sub.coin))
        elif sub.type == "allMids":
            conn.send(self._mids_frame())
        elif sub.type == "clearinghouseState":
            assert sub.user is not None
            conn.send(self._chs_frame(sub.user))
        elif sub.type == "userFills":
            assert sub.user is not None
            fills = self.ledger.fills(sub.user)[::-1][:_SNAPSHOT_FILLS]
            conn.send(
                orjson.dumps(
                    {
                        "channel": "userFills",
                        "data": {"isSnapshot": True, "user": sub.user, "fills": fills},
                    }
                )
            )

    # --- frames ------------------------------------------------------------------------

    def _ctx_frame(self, coin: str) -> bytes:
        return orjson.dumps(
            {"channel": "activeAssetCtx", "data": {"coin": coin, "ctx": self.contexts.ctx(coin)}}
        )

    def _mids_frame(self) -> bytes:
        return orjson.dumps({"channel": "allMids", "data": {"mids": self.contexts.mids()}})

    def _chs_frame(self, user: str) -> bytes:
        state = self.ledger.clearinghouse_state(user, self.contexts.marks(), self.clock.time_ms())
        return orjson.dumps(
            {
                "channel": "clearinghouseState",
                "data": {"dex": "", "user": user, "clearinghouseState": state},
            }
        )

    # --- the block pump ----------------------------------------------------------------

    def emit(self, block: Block) -> None:
        """Everything one block causes: recent windows, frames, ground truth, fills."""
        hub = self.hub
        for coin, trades in block.by_coin.items():
            window = self.recent.get(coin)
            if window is not None:
                window.extend(trades)
            topic = self._trade_topics.get(coin) or f"trades:{coin}"
            subscribed = hub.has_subscribers(topic)
            if not subscribed and self.recorder is None:
                continue
            # Serialised once, for the clients' frame and the ground truth alike.
            data = orjson.dumps(trades)
            if subscribed:
                hub.publish(topic, b'{"channel":"trades","data":' + data + b"}", trades=True)
            if self.recorder is not None:
                self.recorder.trade_frame(data, len(trades))
        self.stats.trades_generated += len(block.trades)
        self.stats.blocks_generated += 1
        hour = block.time // _HOUR_MS
        if hour != self._funding_hour:
            self._new_hour(block.time, hour)
        fills = self._settle(block) if self.ledger.accounts else []
        if self.archive is not None:
            # In the ground truth's order (by coin), so a later conversion of the ground
            # truth writes the same bytes.
            trades = [t for coin_trades in block.by_coin.values() for t in coin_trades]
            self.archive.put(block.time, trades, fills)

    def _new_hour(self, time_ms: int, hour: int) -> None:
        """The first block of an hour settles the last one's funding: history row, charges."""
        if self._funding_hour is not None and hour > self._funding_hour:
            rates = self.contexts.settle_funding(time_ms)
            if self.ledger.accounts:
                oracle = {
                    s.name: px
                    for s in self.universe.listed
                    if (px := self.contexts.oracle_px(s.name)) is not None
                }
                self.ledger.charge_funding(rates, oracle)
        if self._funding_hour is None or hour > self._funding_hour:
            self._funding_hour = hour

    def _settle(self, block: Block) -> list[tuple[str, dict[str, Any]]]:
        """The simulated users' fills of ``block``, recorded and pushed."""
        fills = self.ledger.apply(block.trades)
        if not fills:
            return fills
        self.stats.fills_generated += len(fills)
        if self.recorder is not None:
            self.recorder.fills(fills)
        by_user: dict[str, list[dict[str, Any]]] = {}
        for user, fill in fills:
            by_user.setdefault(user, []).append(fill)
        for user, user_fills in by_user.items():
            topic = f"fills:{user}"
            if self.hub.has_subscribers(topic):
                self.hub.publish(
                    topic,
                    orjson.dumps(
                        {"channel": "userFills", "data": {"user": user, "fills": user_fills}}
                    ),
                )
            if self.hub.has_subscribers(f"chs:{user}"):
                self.hub.publish(f"chs:{user}", self._chs_frame(user))
        return fills

    def liquidate(self, user: str, coin: str, method: str = "market") -> dict[str, Any] | None:
        """Liquidate a simulated wallet's position now, at the coin's mark: the liquidation
        fill is recorded and pushed (``userFills``, then the flat ``clearinghouseState``),
        as a real liquidation would be. None when the wallet holds no such position.
        Test-only control (``POST /_sim/liquidate``, ``SimulatorHandle.call``)."""
        mark = self.contexts.marks().get(coin)
        if mark is None:
            return None
        fill = self.ledger.liquidate(user.lower(), coin, mark, self.clock.time_ms(), method)
        if fill is None:
            return None
        user = user.lower()
        self.stats.fills_generated += 1
        if self.recorder is not None:
            self.recorder.fills([(user, fill)])
        if self.hub.has_subscribers(f"fills:{user}"):
            frame = {"channel": "userFills", "data": {"user": user, "fills": [fill]}}
            self.hub.publish(f"fills:{user}", orjson.dumps(frame))
        if self.hub.has_subscribers(f"chs:{user}"):
            self.hub.publish(f"chs:{user}", self._chs_frame(user))
        return fill

    def list_coin(self, token: str) -> None:
        """List ``NAME`` or ``NAME=PRICE`` now: meta, subscriptions, trading, contexts."""
        assert self._generator is not None, "listing needs a generated market"
        spec = coin_spec(token)
        self.universe.add(spec)
        self._generator.add_coin(spec)
        self.contexts.add_coin(spec)
        self.recent[spec.name] = deque(maxlen=max(1, self.config.replay_trades))
        self._trade_topics[spec.name] = f"trades:{spec.name}"
        self.stats.coins_listed += 1
        upcoming = self.source.next_due_ms() or 0.0
        from_ms = self.started_ms + int(upcoming)
        if isinstance(self.source, GeneratedBlocks):
            from_ms = self.source.origin_ms + int(upcoming)
        if self.recorder is not None:
            self.recorder.listing(spec.name, from_ms)
        log.info("listed %s: trading from block time %d", spec.name, from_ms)

    def delist_coin(self, name: str) -> None:
        """Delist a coin now: ``isDelisted`` in meta, no more trades, a dead context.
        Existing subscriptions stay acknowledged, as the exchange leaves them (tests call
        this through ``SimulatorHandle.call``)."""
        assert self._generator is not None, "delisting needs a generated market"
        self.universe.delist(name)
        self._generator.remove_coin(name)
        if self.recorder is not None:
            self.recorder.listing(name, self.clock.time_ms(), delisted=True)
        log.info("delisted %s", name)

    def _list_due(self, elapsed_ms: float) -> float:
        """List what is due before the next block; the release horizon for this turn."""
        while self._listings:
            at, token = self._listings[0]
            upcoming = self.source.next_due_ms()
            if elapsed_ms < at or (upcoming is not None and upcoming < at):
                # Blocks before the listing are released first, never one after it.
                return min(elapsed_ms, math.nextafter(at, -math.inf))
            self._listings.pop(0)
            self.list_coin(token)
        return elapsed_ms

    def _largest_block(self) -> int:
        """Trades in the largest block the source makes (a cascade's peak blocks)."""
        cascade = self.config.cascade
        if cascade is None:
            return self.config.effective_trades_per_block
        peak = max(cascade.peak_rate, self.config.rate)
        return max(1, round(peak * self.config.effective_block_ms / 1000.0))

    async def _pump(self) -> None:
        loop_start = self.clock.monotonic()
        per_turn = max(1, _TRADES_PER_TURN // max(1, self._largest_block()))
        while True:
            elapsed_ms = (self.clock.monotonic() - loop_start) * 1000.0
            horizon = self._list_due(elapsed_ms)
            blocks = self.source.due(horizon, per_turn)
            for block in blocks:
                self.emit(block)
            upcoming = self.source.next_due_ms()
            if upcoming is None:
                log.info(
                    "replay finished after %d trades; still serving", self.stats.trades_generated
                )
                return
            if len(blocks) >= per_turn:
                await asyncio.sleep(0)  # behind schedule: let writers and readers run
            else:
                wait_ms = upcoming - (self.clock.monotonic() - loop_start) * 1000.0
                await asyncio.sleep(max(0.0, min(wait_ms, 50.0)) / 1000.0)

    # --- periodic pushes ---------------------------------------------------------------

    async def _ctx_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.ctx_interval_s)
            self.contexts.step()
            for spec in self.universe.specs:
                topic = f"ctx:{spec.name}"
                if self.hub.has_subscribers(topic):
                    self.hub.publish(topic, self._ctx_frame(spec.name))
            for topic in self.hub.topics_with_prefix("chs:"):
                self.hub.publish(topic, self._chs_frame(topic.removeprefix("chs:")))

    async def _mids_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.mids_interval_s)
            if self.hub.has_subscribers("allMids"):
                self.hub.publish("allMids", self._mids_frame())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            if self.recorder is not None:
                self.recorder.flush()

    # --- lifecycle ---------------------------------------------------------------------

    def begin(self) -> None:
        """Fix the time origin and write the ground-truth start line; call once, before run."""
        self.started_ms = self.clock.time_ms()
        if isinstance(self.source, GeneratedBlocks):
            start = self.config.start_time_ms
            self.source.origin_ms = start if start is not None else self.started_ms
        if self.recorder is not None:
            self.recorder.start(
                self.started_ms,
                seed=self.config.seed,
                coins=[s.name for s in self.universe.listed],
                delisted=[s.name for s in self.universe.specs if s.delisted],
                users=list(self.ledger.users),
                source="replay" if self.config.replay_path else "generated",
                trades_per_block=self.config.effective_trades_per_block,
                block_ms=self.config.effective_block_ms,
                # only when asked for: the start line of runs without them stays as it was
                **({"wallets": self.config.wallets} if self.config.wallets else {}),
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Run every loop until ``stop`` is set."""
        tasks = [
            asyncio.create_task(coro, name=f"sim-{name}")
            for name, coro in (
                ("pump", self._pump()),
                ("ctx", self._ctx_loop()),
                ("mids", self._mids_loop()),
                ("flush", self._flush_loop()),
                ("faults", self.faults.run_schedule()),
            )
        ]
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    failure = None if task is stopper or task.cancelled() else task.exception()
                    if failure is not None:
                        raise failure
                tasks = [t for t in tasks if not t.done()]
        finally:
            for task in [*tasks, stopper]:
                task.cancel()
            await asyncio.gather(*tasks, stopper, return_exceptions=True)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Deliver what is queued, close every client with 1001, close the ground truth."""
        conns = list(self.hub.connections.values())
        await asyncio.gather(
            *(c.finish(timeout, 1001, b"simulator shutting down") for c in conns),
            return_exceptions=True,
        )
        self.close_recorder()

    def close_recorder(self, archive_timeout: float = 60.0) -> None:
        """Close the ground truth (stop line) and the archive files (what is queued first,
        for at most ``archive_timeout`` seconds)."""
        if self.recorder is not None:
            self.recorder.close(self.clock.time_ms())
        if self.archive is not None:
            self.archive.close(archive_timeout)
