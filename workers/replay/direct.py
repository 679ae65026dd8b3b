"""``hyperwatch replay --into db``: recordings straight into the database, parsing spread
over processes, stored through the archive import's bulk path.

Why not through the workers: the player is one Python thread and the persist tasks decode
every batch again; at ``--max`` both fall short of what COPY takes (docs/PERFORMANCE.md,
"Record and replay"). Here ``jobs`` processes each run a player over every record and parse
their share of the coins (``workers/replay/shards.py``), render COPY text and fold bar
deltas (``TradeRepository.prepare``), and this process stores each batch in one
transaction as the archive import does (``TradeRepository.add_batch(fold_bars=True)``:
COPY, idempotent on the live key (coin, time, tid), bars folded from the new rows only,
tracked wallets' activity derived from them). Contexts, positions and fills go through
their repositories as the persist tasks store them.

Sessions and gaps: each shard's session records are kept (the latest per shard), merged
(counters added, gaps joined) and stored at the end, with the persist task's own function
(``tasks.persist.store_session_record``); ids are the player's stable ones, so a second
replay upserts the same rows. Then the live gaps the recording covered are healed
(``workers/replay/healing.py``).

What a crash leaves: the batches stored so far (each one whole); the sessions and gaps
only come with the end. A rerun adds the rest and nothing twice.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson

from events import AssetContext, Fill, Position
from models.db import Database
from models.repositories import (
    AssetContextRepository,
    FillRepository,
    PositionRepository,
    TradeRepository,
)
from runtime.child_processes import parsing_context
from tasks.persist import session_record, store_session_record
from workers.replay.healing import heal_replayed
from workers.replay.shards import (
    EventBatch,
    SessionBody,
    ShardEnd,
    ShardJob,
    TradeBatch,
    merge_sessions,
    play_shard,
    run_shard,
)

DEFAULT_BATCH = 50_000  # trades a transaction, as the archive import


class DirectFailed(RuntimeError):
    """A shard's process crashed or stopped: what was stored stays; a rerun completes it."""


@dataclass
class DirectResult:
    frames: int = 0
    malformed: int = 0
    trades: int = 0  # played (after the pipelines' dedup)
    trades_new: int = 0
    trades_duplicate: int = 0
    rows_new: int = 0  # contexts, positions and fills
    batches: int = 0
    sessions: int = 0
    gaps: int = 0  # the replay's own gap records
    healed: int = 0  # other gaps it covered
    seconds: float = 0.0
    damaged: list[str] = field(default_factory=list)


class DirectReplay:
    def __init__(
        self,
        database: Database,
        name: str,
        *,
        wallets: Iterable[str] = (),
        batch_size: int = DEFAULT_BATCH,
        batch_ms: int = 10_000,
        dedup_size: int = 100_000,
        context_bucket_ms: int = 60_000,
        jobs: int = 1,
    ) -> None:
        self.database = database
        self.name = name
        self.wallets = frozenset(w.lower() for w in wallets)
        self.batch_size = batch_size
        self.batch_ms = batch_ms
        self.dedup_size = dedup_size
        self.context_bucket_ms = context_bucket_ms
        # COPY text alone crosses processes; SQLite stores the rows themselves: one process.
        self.jobs = jobs if database.dialect == "postgresql" else 1
        self.result = DirectResult()
        self._sessions: dict[str, dict[int, dict[str, Any]]] = {}  # id → shard → latest
        self._seen: dict[str, list[int]] = {}

    def run(self, files: Sequence[Path], start_ns: int | None, end_ns: int | None) -> DirectResult:
        started = time.perf_counter()
        jobs = [self._job(files, start_ns, end_ns, shard) for shard in range(self.jobs)]
        if self.jobs == 1:
            for item in play_shard(jobs[0]):
                self._take(item)
        else:
            self._run_processes(jobs)
        self._finish()
        self.result.seconds = time.perf_counter() - started
        return self.result

    def _job(
        self, files: Sequence[Path], start_ns: int | None, end_ns: int | None, shard: int
    ) -> ShardJob:
        return ShardJob(
            tuple(map(str, files)), start_ns, end_ns, self.name, shard, self.jobs,
            self.batch_size, self.batch_ms, self.dedup_size, self.wallets, self.jobs > 1,
            self.database.url if self.database.dialect == "postgresql" else None,
        )  # fmt: skip

    def _run_processes(self, jobs: list[ShardJob]) -> None:
        context = parsing_context()
        results = context.Queue(maxsize=4 * len(jobs))
        processes = [
            context.Process(target=run_shard, args=(job, results), daemon=True) for job in jobs
        ]
        for process in processes:
            process.start()
        running = len(processes)
        try:
            while running:
                try:
                    item = results.get(timeout=1.0)
                except queue.Empty:
                    if not any(p.is_alive() for p in processes):
                        raise DirectFailed("a replay process stopped without a word") from None
                    continue
                if isinstance(item, tuple):  # ("crash", shard, why)
                    raise DirectFailed(f"replay process {item[1]}: {item[2]}")
                self._take(item)
                if isinstance(item, ShardEnd):
                    running -= 1
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()

    def _take(self, item: TradeBatch | EventBatch | SessionBody | ShardEnd) -> None:
        result = self.result
        if isinstance(item, TradeBatch):
            with self.database.session() as session:
                stored = TradeRepository(session).add_batch(item.prepared, fold_bars=True)
            result.trades_new += stored.new
            result.trades_duplicate += stored.duplicates
            result.batches += 1
        elif isinstance(item, EventBatch):
            result.rows_new += self._store_events(item)
            result.batches += 1
        elif isinstance(item, SessionBody):
            record = orjson.loads(item.body)
            self._sessions.setdefault(record["id"], {})[item.shard] = record
        else:
            result.frames += item.frames
            result.malformed += item.malformed
            result.trades += item.trades
            result.damaged += item.damaged
            for coin, (lo, hi) in item.seen.items():
                span = self._seen.setdefault(coin, [lo, hi])
                span[0], span[1] = min(span[0], lo), max(span[1], hi)

    def _store_events(self, batch: EventBatch) -> int:
        with self.database.session() as session:
            if batch.kind == "asset_contexts":
                events = cast(list[AssetContext], batch.events)
                stored = AssetContextRepository(session).add_batch(events, self.context_bucket_ms)
            elif batch.kind == "positions":
                stored = PositionRepository(session).add_batch(cast(list[Position], batch.events))
            elif batch.kind == "fills":
                stored = FillRepository(session).add_batch(cast(list[Fill], batch.events))
            else:
                return 0
        return stored.new

    def _finish(self) -> None:
        """The merged sessions and their gaps, then the live gaps the replay covered."""
        own_gaps: dict[str, dict[str, Any]] = {}
        with self.database.session() as session:
            for by_shard in self._sessions.values():
                record = session_record(merge_sessions([by_shard[k] for k in sorted(by_shard)]))
                store_session_record(session, record)
                for gap in record.get("gaps") or []:
                    known = own_gaps.get(gap["id"])
                    if known is None or known.get("to_ms") is None:
                        own_gaps[gap["id"]] = gap  # a closed copy over an open one
        self.result.sessions = len(self._sessions)
        self.result.gaps = len(own_gaps)
        self.result.healed = heal_replayed(self.database, self._seen, own_gaps.values())
