"""One share of a ``replay --into db``: a player over every record, parsing its coins' frames.

Contract: :func:`play_shard` reads the recordings itself (every process reads the files:
decompression is cheap beside parsing) and yields what the replaying process stores, in
order: :class:`TradeBatch` (COPY text and bar deltas made here, as the archive import's
decoding processes do), :class:`EventBatch` (contexts, positions, fills),
:class:`SessionBody` (a session record, the player's stable ids in it), and last a
:class:`ShardEnd`.

Which frames are whose: a ``trades`` frame carries one coin (one subscription per coin), so
coins are dealt out in the order they first appear — the same order in every process, as
all read the same records — and shard ``k`` of ``n`` parses the coins numbered ``k`` mod
``n``. Every other frame (contexts, mids, wallets' streams, acks, malformed ones) is shard
0's. A coin's trades thus meet one pipeline, in recorded order, so its dedup and gap
tracking are the live ones; every player sees every connection's opening, close and drop
(``Player.touch`` for the frames it does not parse), so a session is the same session in
each, and the replaying process adds their counters and joins their gaps
(:func:`merge_sessions`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from domain.archive.importer import GC_THRESHOLDS  # the import's batches, the same reason
from events import Event
from models.repositories.trades import PreparedTrades, TradeRepository
from models.repositories.wallet_ids import WalletIds
from runtime.metrics import Metrics
from workers.ingester.batcher import Ready
from workers.ingester.broker import Target
from workers.replay.player import DRAIN_EVERY, Player
from workers.replay.reading import records

_TRADES_HEAD = b'{"channel":"trades"'
_COIN = b'"coin":"'


@dataclass(frozen=True, slots=True)
class ShardJob:
    """Everything a shard's process needs (picklable)."""

    files: tuple[str, ...]
    start_ns: int | None
    end_ns: int | None
    name: str
    shard: int
    shards: int
    batch_size: int
    batch_ms: int
    dedup_size: int
    wallets: frozenset[str]
    ship: bool  # to another process: trades as COPY text only (PostgreSQL)
    # PostgreSQL: wallet ids resolved here, on a connection of its own (WalletIds), so
    # the COPY text carries them and the storing process has no rewriting to do.
    database_url: str | None = field(default=None, repr=False)


@dataclass(slots=True)
class TradeBatch:
    prepared: PreparedTrades


@dataclass(slots=True)
class EventBatch:
    kind: str
    events: list[Event]


@dataclass(slots=True)
class SessionBody:
    shard: int
    body: bytes  # a session record's JSON, the player's stable ids in it


@dataclass(slots=True)
class ShardEnd:
    shard: int
    frames: int = 0
    malformed: int = 0
    trades: int = 0
    seen: dict[str, list[int]] = field(default_factory=dict)
    damaged: list[str] = field(default_factory=list)


class Dealer:
    """Whose a frame is (module doc): cheap, on the raw bytes, before any parsing."""

    def __init__(self, shard: int, shards: int) -> None:
        self.shard = shard
        self.shards = shards
        self._order: dict[bytes, int] = {}

    def mine(self, payload: bytes) -> bool:
        if self.shards == 1:
            return True
        if not payload.startswith(_TRADES_HEAD):
            return self.shard == 0
        at = payload.find(_COIN)
        end = payload.find(b'"', at + len(_COIN)) if at >= 0 else -1
        if end < 0:
            return self.shard == 0
        coin = payload[at + len(_COIN) : end]
        index = self._order.get(coin)
        if index is None:
            index = self._order[coin] = len(self._order)
        return index % self.shards == self.shard


Item = TradeBatch | EventBatch | SessionBody | ShardEnd


def play_shard(job: ShardJob) -> Iterator[Item]:
    """The shard's items (module doc), in order."""
    resolve = WalletIds.connect(job.database_url) if job.database_url else None
    try:
        yield from _play(job, resolve)
    finally:
        if resolve is not None:
            resolve.close()


def _play(job: ShardJob, resolve: WalletIds | None) -> Iterator[Item]:
    out: list[Item] = []
    wallets = job.wallets

    def stored(batch: Ready) -> None:
        if batch.kind == "trades":
            events = batch.events
            prepared = TradeRepository.prepare(events, wallets, resolve)  # type: ignore[arg-type]
            out.append(TradeBatch(replace(prepared, trades=()) if job.ship else prepared))
        else:
            out.append(EventBatch(batch.kind, batch.events))

    def session(target: Target, body: bytes, argsrepr: str) -> None:
        out.append(SessionBody(job.shard, body))

    player = Player(
        job.name, session, Metrics(), job.batch_size, job.batch_ms, job.dedup_size, stored
    )
    dealer = Dealer(job.shard, job.shards)
    damaged: list[str] = []
    paths = [Path(f) for f in job.files]
    since_drain = 0
    for record in records(paths, job.start_ns, job.end_ns, damaged):
        if record.kind != "F" or dealer.mine(record.payload):
            player.feed(record)
        else:
            player.touch(record)
        since_drain += 1
        if out or since_drain >= DRAIN_EVERY:
            since_drain = 0
            player.drain()
            yield from out
            out.clear()
    player.finish()
    yield from out
    result = player.result
    yield ShardEnd(job.shard, result.frames, result.malformed, result.trades, result.seen, damaged)


def run_shard(job: ShardJob, results: Any) -> None:
    """A shard's process: its items onto ``results``; a crash as ``("crash", shard, why)``."""
    gc.set_threshold(*GC_THRESHOLDS)  # a spawned process starts with Python's default
    try:
        for item in play_shard(job):
            results.put(item)
    except BaseException as exc:  # reported; the replay fails with it
        results.put(("crash", job.shard, f"{type(exc).__name__}: {exc}"))


_COUNTERS = ("frames", "events", "malformed", "duplicates")


def merge_sessions(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One session as the shards saw it (each its latest record): counters added (each
    frame was parsed by one shard), gaps joined by id (a closed one over an open one), the
    earliest start, the end if any shard saw it."""
    merged = dict(records[0])
    for name in _COUNTERS:
        merged[name] = sum(int(r.get(name) or 0) for r in records)
    merged["started_at"] = min(r["started_at"] for r in records)
    gaps: dict[str, dict[str, Any]] = {}
    for record in records:
        for gap in record.get("gaps") or []:
            known = gaps.get(gap.get("id"))
            if known is None or (known.get("to_ms") is None and gap.get("to_ms") is not None):
                gaps[gap.get("id")] = gap
        if record.get("ended_at") is not None and merged.get("ended_at") is None:
            merged["ended_at"] = record["ended_at"]
            merged["end_reason"] = record.get("end_reason")
    merged["gaps"] = list(gaps.values())
    return merged
