"""The ground truth: what the simulated exchange produced, as JSON lines, and how to read it.

Format (one JSON object per line, ``type`` first; readers skip types they do not know):

* ``{"type":"start","time":ms,"seed":int,"coins":[...],"users":[...],"source":"generated"|"replay"}``
  once, first (with ``"wallets":N`` when ``--wallets`` was given: ``sim_wallet_address``
  0..N-1 trade in the stream, without fills).
* ``{"type":"trades","data":[<WsTrade>, …]}`` — the ``data`` of a ``trades`` frame, exactly
  as sent (``users`` is [buyer, seller]) — for every trade the exchange generated, whether or
  not any client was connected or received it (so it is the superset the database is
  compared against; faults decide what a client actually saw). The exchange serialises each
  frame's trades once and writes those bytes both to its clients and here.
* ``{"type":"trade","coin":str,"time":ms,"tid":int,"px":str,"sz":str,"side":"B"|"A",
  "hash":str,"buyer":str,"seller":str}``: one trade, as files written before the ``trades``
  record hold them; still read.
* ``{"type":"fill","user":str, <every WsFill field>}`` for every simulated user's fill.
* ``{"type":"fault","kind":"drop"|"stall"|"malformed"|"duplicate","time":ms, ...}`` for every
  fault injected (drop: ``connections``; stall: ``seconds``, ``connections``; malformed:
  ``connection``, ``variant``; duplicate: ``connections``, ``trades``).
* ``{"type":"listing","coin":str,"time":ms}`` when a coin is listed mid-run
  (``--list-later``): ``time`` is the block time from which it trades; with
  ``"delisted":true`` when one is delisted mid-run (from then on it does not trade).
* ``{"type":"stop","time":ms,"trades":int}`` once, last, on a clean shutdown.

Writes are buffered and flushed every second by the server and on shutdown (SIGTERM/SIGINT
included). A process killed hard may leave a torn last line; the reader skips it.

Reader API for tests elsewhere::

    gt = read_ground_truth(path)          # GroundTruth(trades, fills, faults, start, stop)
    gt.trade_keys()                       # {(coin, time, tid), ...}
    gt.trades[0].to_event()               # events.Trade with Decimal px/sz
    for trade in iter_trades(path): ...   # streaming, for big captures

:class:`ReplayBlocks` serves the trade lines of a capture again (``--replay``), paced by
their original time gaps and keeping their original times.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from events import Trade as TradeEvent
from workers.simulator.candles import MinuteBars
from workers.simulator.market import Block, Trade
from workers.simulator.money import to_units
from workers.simulator.universe import CoinSpec, Universe, coin_spec

_LINE = orjson.OPT_APPEND_NEWLINE
# Replayed prices and sizes are folded into candles as integer units of 10^-8: exact for
# every number Hyperliquid prints (at most 6 price decimals on perps, 8 on spot).
_REPLAY_DECIMALS = 8
_BUFFER = 1 << 20


class GroundTruthWriter:
    """Appends ground-truth lines to ``path`` (truncating it first). Not thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = open(self.path, "wb", buffering=_BUFFER)  # noqa: SIM115
        self.trades_written = 0

    def _write(self, data: bytes) -> None:
        if self._file is not None:
            self._file.write(data)

    def start(self, time_ms: int, **details: Any) -> None:
        self._write(orjson.dumps({"type": "start", "time": time_ms, **details}, option=_LINE))

    def trade_frame(self, data: bytes, count: int) -> None:
        """A ``trades`` line around ``data``: a frame's trades, already serialised as the
        JSON array the clients were sent (``count`` of them)."""
        self.trades_written += count
        self._write(b'{"type":"trades","data":' + data + b"}\n")

    def fills(self, fills: Iterable[tuple[str, dict[str, Any]]]) -> None:
        self._write(
            b"".join(orjson.dumps({"type": "fill", "user": u, **f}, option=_LINE) for u, f in fills)
        )

    def fault(self, kind: str, time_ms: int, **details: Any) -> None:
        self._write(
            orjson.dumps({"type": "fault", "kind": kind, **details, "time": time_ms}, option=_LINE)
        )

    def listing(self, coin: str, time_ms: int, delisted: bool = False) -> None:
        record: dict[str, Any] = {"type": "listing", "coin": coin, "time": time_ms}
        if delisted:
            record["delisted"] = True
        self._write(orjson.dumps(record, option=_LINE))

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self, time_ms: int) -> None:
        """Write the stop line, flush and close; later calls do nothing."""
        if self._file is None:
            return
        self._write(
            orjson.dumps(
                {"type": "stop", "time": time_ms, "trades": self.trades_written}, option=_LINE
            )
        )
        self._file.close()
        self._file = None


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroundTruthTrade:
    """One generated trade. Identity is (coin, time, tid), as in the database."""

    coin: str
    time: int
    tid: int
    px: str
    sz: str
    side: str
    hash: str
    buyer: str
    seller: str

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.coin, self.time, self.tid)

    def to_event(self) -> TradeEvent:
        return TradeEvent(
            coin=self.coin,
            time=self.time,
            tid=self.tid,
            px=Decimal(self.px),
            sz=Decimal(self.sz),
            side="B" if self.side == "B" else "A",
            hash=self.hash,
            buyer=self.buyer,
            seller=self.seller,
        )

    def to_wire(self) -> Trade:
        """The WsTrade dict the exchange sent for this trade."""
        return {
            "coin": self.coin,
            "side": self.side,
            "px": self.px,
            "sz": self.sz,
            "time": self.time,
            "hash": self.hash,
            "tid": self.tid,
            "users": [self.buyer, self.seller],
        }

    @classmethod
    def from_wire(cls, trade: dict[str, Any]) -> GroundTruthTrade:
        """From a WsTrade dict (``users`` is [buyer, seller])."""
        buyer, seller = trade["users"]
        return cls.from_record({**trade, "buyer": buyer, "seller": seller})

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GroundTruthTrade:
        return cls(
            coin=record["coin"],
            time=record["time"],
            tid=record["tid"],
            px=record["px"],
            sz=record["sz"],
            side=record["side"],
            hash=record["hash"],
            buyer=record["buyer"],
            seller=record["seller"],
        )


@dataclass
class GroundTruth:
    trades: list[GroundTruthTrade] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    start: dict[str, Any] | None = None
    stop: dict[str, Any] | None = None

    def trade_keys(self) -> set[tuple[str, int, int]]:
        return {t.key for t in self.trades}


def iter_ground_truth(path: str | Path) -> Iterator[dict[str, Any]]:
    """Every record in file order; a torn (unparseable) final line is skipped."""
    with open(path, "rb") as handle:
        pending: bytes | None = None
        for line in handle:
            if pending is not None:
                yield orjson.loads(pending)  # not the last line: it must parse
            pending = line if line.strip() else None
        if pending is not None:
            try:
                yield orjson.loads(pending)
            except orjson.JSONDecodeError:
                return


def iter_trades(path: str | Path) -> Iterator[GroundTruthTrade]:
    for record in iter_ground_truth(path):
        yield from _record_trades(record)


def _record_trades(record: dict[str, Any]) -> Iterator[GroundTruthTrade]:
    kind = record.get("type")
    if kind == "trades":
        for trade in record["data"]:
            yield GroundTruthTrade.from_wire(trade)
    elif kind == "trade":
        yield GroundTruthTrade.from_record(record)


def read_ground_truth(path: str | Path) -> GroundTruth:
    """The whole capture, split by record type."""
    truth = GroundTruth()
    for record in iter_ground_truth(path):
        kind = record.get("type")
        if kind in ("trade", "trades"):
            truth.trades.extend(_record_trades(record))
        elif kind == "fill":
            truth.fills.append(record)
        elif kind == "fault":
            truth.faults.append(record)
        elif kind == "start":
            truth.start = record
        elif kind == "stop":
            truth.stop = record
    return truth


# --- replay ---------------------------------------------------------------------------------


class ReplayBlocks:
    """A capture's trades served again: one block per run of equal times, original pacing.

    Also the :class:`~workers.simulator.market.MarketView` of the replay: the mid of a coin
    is its last replayed price, volumes are what has been replayed.
    """

    def __init__(
        self, path: str | Path, coins: Iterable[str] = (), delisted: Iterable[str] = ()
    ) -> None:
        self.path = Path(path)
        first_px: dict[str, str] = {}
        self._first_time: int | None = None
        for trade in iter_trades(self.path):
            first_px.setdefault(trade.coin, trade.px)
            if self._first_time is None:
                self._first_time = trade.time
        specs: list[CoinSpec] = [coin_spec(token) for token in coins]
        known = {s.name for s in specs}
        specs += [coin_spec(f"{name}={px}") for name, px in first_px.items() if name not in known]
        known |= set(first_px)
        specs += [coin_spec(token, delisted=True) for token in delisted if token not in known]
        self.universe = Universe(tuple(specs))
        self.market = self
        self._trades = iter_trades(self.path)
        self._held: GroundTruthTrade | None = next(self._trades, None)
        self._last: dict[str, Decimal] = {}
        self._volume: dict[str, tuple[Decimal, Decimal]] = {}
        self._bars = {
            s.name: MinuteBars(s.name, _REPLAY_DECIMALS, _REPLAY_DECIMALS)
            for s in self.universe.specs
        }
        self.trades_replayed = 0

    def _release_ms(self, trade: GroundTruthTrade) -> float:
        assert self._first_time is not None
        return float(trade.time - self._first_time)

    def due(self, elapsed_ms: float, limit: int) -> list[Block]:
        blocks: list[Block] = []
        while (
            len(blocks) < limit
            and self._held is not None
            and self._release_ms(self._held) <= elapsed_ms
        ):
            time_ms = self._held.time
            trades: list[Trade] = []
            by_coin: dict[str, list[Trade]] = {}
            while self._held is not None and self._held.time == time_ms:
                wire = self._held.to_wire()
                trades.append(wire)
                by_coin.setdefault(self._held.coin, []).append(wire)
                self._account(self._held)
                self._held = next(self._trades, None)
            blocks.append(Block(time_ms, trades, by_coin))
        return blocks

    def next_due_ms(self) -> float | None:
        return None if self._held is None else self._release_ms(self._held)

    def _account(self, trade: GroundTruthTrade) -> None:
        px, sz = Decimal(trade.px), Decimal(trade.sz)
        self._last[trade.coin] = px
        base, ntl = self._volume.get(trade.coin, (Decimal(0), Decimal(0)))
        self._volume[trade.coin] = (base + sz, ntl + px * sz)
        bars = self._bars.get(trade.coin)
        if bars is not None:
            units = to_units(px, _REPLAY_DECIMALS)
            bars.fold(trade.time, units, units, to_units(sz, _REPLAY_DECIMALS), 1)
        self.trades_replayed += 1

    # --- MarketView --------------------------------------------------------------------

    def mid(self, coin: str) -> Decimal | None:
        spec = self.universe.get(coin)
        if spec is None or spec.delisted:
            return None
        return self._last.get(coin, spec.base_px)

    def best_bid_ask(self, coin: str) -> tuple[Decimal, Decimal] | None:
        spec = self.universe.get(coin)
        mid = self.mid(coin)
        if spec is None or mid is None:
            return None
        return mid, mid + Decimal(1).scaleb(-spec.px_decimals)

    def volumes(self, coin: str) -> tuple[Decimal, Decimal]:
        return self._volume.get(coin, (Decimal(0), Decimal(0)))

    def candles(self, coin: str) -> MinuteBars | None:
        return self._bars.get(coin)
