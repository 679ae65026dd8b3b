"""The simulator's ground truth as Hyperliquid archive files (``node_fills_by_block``).

Layout and line format follow ``../shared/reference/hyperliquid-archive.md`` §3.1, §3.5 and
the simulator recipe of §7: one compact JSON line per block,
``{"local_time","block_time","block_number","events":[[user, fill], …]}``, in hourly LZ4
files ``node_fills_by_block/hourly/{YYYYMMDD}/{H}.lz4`` (hour not zero-padded) bucketed by
the line's ``local_time``, framed as the real objects are (level 9, independent 4 MiB
blocks, content checksum). Each trade is two adjacent fills, ``B`` (the buyer) then ``A``
(the seller), sharing coin, px, sz, time, hash and tid, exactly one of them ``crossed``
(the taker, on the trade's ``side``). A simulated wallet's fill is the ledger's own
(``startPosition``, ``dir``, ``closedPnl``, ``fee``, ``oid`` as its ``userFills`` said);
anyone else's is made up here (flat start, taker/maker fee, a fresh oid).

Times: ``block_time`` is the block's ms time plus a sub-millisecond part, so the fills'
``time`` is ``block_time`` truncated to ms (§3.2); ``local_time`` trails it by 63-826 ms (as
in the real fixture) and never goes backwards, so a block at hh:59:59.9 lands in the next
hour's file. Everything is a function of the block sequence: the same run written live
(``hyperwatch simulate --archive-dir``) and converted afterwards from its ground truth
(:func:`write_from_ground_truth`) gives the same bytes.

Live, the exchange hands each block to :class:`ArchiveSink`, which writes on a thread of its
own: the block pump pays one queue put per block. The writer costs about 16 µs a trade at
LZ4 level 9 (compression, which releases the GIL, is most of it) and 7 µs at level 1, so
it keeps up with about 60,000 and 145,000 trades/s; past that its queue fills and the
simulator slows down rather than drop ground truth (``--archive-level``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import orjson

from runtime.hyperliquid.archive import format_iso_ns, open_lz4_writer
from workers.simulator.groundtruth import GroundTruthTrade, iter_ground_truth
from workers.simulator.money import dec_str, quantize

PREFIX = "node_fills_by_block"
FIRST_BLOCK_NUMBER = 681_644_303
_TAKER_FEE = Decimal("0.00045")
_MAKER_FEE = Decimal("0.00015")
_FIRST_OID = 100_000_000_000
_HOUR_NS = 3_600_000_000_000
_MIN_LATENCY_NS = 63_000_000
_LATENCY_SPAN_NS = 763_000_000

FillKey = tuple[str, int]  # (user, tid)


def hour_path(root: Path, local_ns: int) -> Path:
    """``root/node_fills_by_block/hourly/{YYYYMMDD}/{H}.lz4`` for a local time."""
    text = format_iso_ns(local_ns - local_ns % _HOUR_NS)
    return root / PREFIX / "hourly" / text[:10].replace("-", "") / f"{int(text[11:13])}.lz4"


@dataclass(slots=True)
class ArchiveStats:
    files: int = 0
    blocks: int = 0
    trades: int = 0
    fills: int = 0  # events written (two per trade)


class HourlyArchiveWriter:
    """Blocks in, hourly archive files out. Not thread-safe; :meth:`close` when done."""

    def __init__(self, root: str | Path, compression_level: int = 9) -> None:
        self.root = Path(root)
        self.compression_level = compression_level
        self.stats = ArchiveStats()
        self._number = FIRST_BLOCK_NUMBER
        self._oid = _FIRST_OID
        self._local_ns = 0
        self._hour = -1
        self._file: IO[bytes] | None = None
        self.paths: list[Path] = []

    def block(
        self,
        time_ms: int,
        trades: Sequence[Mapping[str, Any]],
        own_fills: Mapping[FillKey, Mapping[str, Any]] | None = None,
    ) -> None:
        """One block: its ms time, its WsTrade dicts (``users`` = [buyer, seller]) and the
        simulated wallets' fills of it by (user, tid)."""
        if not trades:
            return
        number = self._number
        self._number += 1
        block_ns = time_ms * 1_000_000 + (number * 7919) % 1_000_000
        latency = _MIN_LATENCY_NS + (number * 2_654_435_761) % _LATENCY_SPAN_NS
        local_ns = max(block_ns + latency, self._local_ns + 1_000)
        self._local_ns = local_ns
        own = own_fills or {}
        events: list[list[Any]] = []
        append = events.append
        for trade in trades:
            buyer, seller = trade["users"]
            tid = trade["tid"]
            taker_buys = trade["side"] == "B"
            append([buyer, own.get((buyer, tid)) or self._fill(trade, "B", taker_buys)])
            append([seller, own.get((seller, tid)) or self._fill(trade, "A", not taker_buys)])
        line = orjson.dumps(
            {
                "local_time": format_iso_ns(local_ns),
                "block_time": format_iso_ns(block_ns),
                "block_number": number,
                "events": events,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
        hour = local_ns // _HOUR_NS
        if hour != self._hour or self._file is None:
            self._open(local_ns, hour)
        assert self._file is not None
        self._file.write(line)
        self.stats.blocks += 1
        self.stats.trades += len(trades)
        self.stats.fills += len(events)

    def _fill(self, trade: Mapping[str, Any], side: str, crossed: bool) -> dict[str, Any]:
        self._oid += 1
        px, sz = trade["px"], trade["sz"]
        fee = quantize(Decimal(px) * Decimal(sz) * (_TAKER_FEE if crossed else _MAKER_FEE), 6)
        return {
            "coin": trade["coin"],
            "px": px,
            "sz": sz,
            "side": side,
            "time": trade["time"],
            "startPosition": "0.0",
            "dir": "Open Long" if side == "B" else "Open Short",
            "closedPnl": "0.0",
            "hash": trade["hash"],
            "oid": self._oid,
            "crossed": crossed,
            "fee": dec_str(fee),
            "tid": trade["tid"],
            "feeToken": "USDC",
            "twapId": None,
        }

    def _open(self, local_ns: int, hour: int) -> None:
        self._close_file()
        path = hour_path(self.root, local_ns)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open_lz4_writer(path, self.compression_level)
        self._hour = hour
        self.paths.append(path)
        self.stats.files += 1

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> ArchiveStats:
        self._close_file()
        return self.stats


class ArchiveSink:
    """An :class:`HourlyArchiveWriter` on a thread of its own, fed one block at a time.

    ``put`` costs the caller a queue put. The queue holds up to ``max_blocks`` blocks; a
    writer that far behind makes ``put`` wait (the ground truth is never dropped).
    """

    def __init__(
        self, root: str | Path, compression_level: int = 9, max_blocks: int = 20_000
    ) -> None:
        self.writer = HourlyArchiveWriter(root, compression_level)
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[int, list[Any], dict[FillKey, Any]] | None] = queue.Queue(
            max_blocks
        )
        self._thread = threading.Thread(target=self._run, name="sim-archive", daemon=True)
        self._thread.start()
        self._closed = False

    def put(
        self, time_ms: int, trades: list[Any], fills: Iterable[tuple[str, Mapping[str, Any]]]
    ) -> None:
        if self._closed:
            return
        own = {(user, fill["tid"]): fill for user, fill in fills}
        self._queue.put((time_ms, trades, own))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            try:
                self.writer.block(*item)
            except BaseException as exc:  # kept; the simulator keeps serving
                self.error = exc

    def close(self, timeout: float = 60.0) -> ArchiveStats:
        """Write what is queued and close the current hour's file; idempotent. A writer
        still busy after ``timeout`` is left alone (the process is about to end; the last
        hour's file is then cut short, as a killed node's would be)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self.writer.close()
        return self.writer.stats


def write_from_ground_truth(
    ground_truth: str | Path, out_dir: str | Path, compression_level: int = 9
) -> ArchiveStats:
    """Convert a ground-truth file (``simulate --record``) to archive files under ``out_dir``.

    Blocks are the runs of ``trades`` records with one time (one record per coin and block);
    a block's ``fill`` records follow its trades. Streams: memory holds one block.
    """
    writer = HourlyArchiveWriter(out_dir, compression_level)
    time_ms: int | None = None
    trades: list[Any] = []
    own: dict[FillKey, Any] = {}
    try:
        for record in iter_ground_truth(ground_truth):
            kind = record.get("type")
            if kind == "trades" or kind == "trade":
                batch = (
                    record["data"]
                    if kind == "trades"
                    else [GroundTruthTrade.from_record(record).to_wire()]
                )
                for trade in batch:
                    if trade["time"] != time_ms:
                        writer.block(time_ms or 0, trades, own)
                        time_ms, trades, own = trade["time"], [], {}
                    trades.append(trade)
            elif kind == "fill":
                fill = {k: v for k, v in record.items() if k not in ("type", "user")}
                own[(record["user"], fill["tid"])] = fill
        writer.block(time_ms or 0, trades, own)
    finally:
        writer.close()
    return writer.stats
