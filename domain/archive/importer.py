"""Import Hyperliquid's archive files into the database: trades, tracked wallets' fills, bars.

Files in the exchange's order (legacy formats first, then by date and hour), each so:

1. The file's identity (archive key, size, SHA-256 of the first MiB) finds its
   ``archive_imports`` row. A ``done`` file is skipped; any other resumes after its
   ``lines_done`` (``force`` reads it again from the start).
2. The main thread streams the file (``runtime.hyperliquid.archive``): LZ4 chunks → lines →
   trades (one per tid, derived from its two fills) and the fills of tracked wallets.
3. Every ``batch_size`` trades, the main thread renders the batch's COPY text and folds
   its bars and its tracked wallets' activity (``TradeRepository.prepare``) and hands it to
   a writer thread, which stores it in one transaction: ``TradeRepository.add_batch(
   fold_bars=True)`` (COPY, idempotent on (coin, time, tid); only the new trades are folded
   into their 1-minute bars and give their tracked wallets' sides to ``user_fills``),
   ``FillRepository.add_batch`` (idempotent on (user, tid), completing those rows) and the
   file's progress row.
   Parsing the next batch overlaps with PostgreSQL storing this one; at most two batches
   wait, so memory stays bounded whatever the file size. With ``jobs`` > 1, that many
   files are parsed at once in processes of their own (steps 2 and 3's preparation), and
   this process stores their batches, each file's in order.
4. The end of the file marks it ``done``; an unreadable file (not LZ4, truncated, corrupt)
   is ``failed`` with the error, after storing what was read before it.

Idempotent with live rows and with itself: the rows' keys are the live feed's, so a trade
the ingester stored is a duplicate here, and a rerun adds nothing. Resuming is exact: the
progress row commits with the rows it counts, and ``lines_done`` stops before any fill
still waiting for its counterpart. Bars stay consistent for the same reason: a trade is
folded in the transaction that inserted it, and only then.

Why fold per batch rather than once per file: a per-file aggregate would commit bars apart
from the trades (a crash in between loses those trades' bars for good, as a rerun finds
them stored and folds nothing), or hold a whole file in one transaction (no resuming). The
fold costs about 7 % of the import's CPU (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from sqlalchemy.orm import Session

from domain.archive.coverage import heal_covered_gaps
from events import Fill
from models.db import Database
from models.repositories import (
    ArchiveImportRepository,
    FillRepository,
    TrackedWalletRepository,
    TradeRepository,
)
from models.repositories.archive_imports import BatchProgress, FileIdentity
from models.repositories.snapshots import BulkResult
from models.repositories.trades import PreparedTrades
from models.repositories.wallet_ids import WalletIds
from runtime.child_processes import parsing_context
from runtime.hyperliquid.archive import (
    ArchiveDecoder,
    ArchiveError,
    ArchiveFormat,
    BadLineReport,
    LineChunk,
    archive_key,
    format_from_line,
    format_from_path,
    iter_line_chunks,
    sort_key,
)
from settings import Settings

HEAD_BYTES = 1 << 20
# Batches hold tens of thousands of rows: collecting the young generation every 700
# allocations (the default) rescans them again and again, about a tenth of the import's
# CPU, while an import makes few reference cycles. Set for the importing process by the
# CLI and for each decoding process here.
GC_THRESHOLDS: Final = (100_000, 50, 100)
DEFAULT_BATCH = 50_000
_SLICE = 1_000  # lines fed to the decoder at a time
_FILL_FORMATS = ("node_fills", "node_fills_by_block")


def hour_of(key: str) -> tuple[str, int] | None:
    """(YYYYMMDD, hour) of an ``…/hourly/{YYYYMMDD}/{H}.lz4`` key, else None."""
    parts = key.split("/")
    if len(parts) < 3 or parts[-3] != "hourly":
        return None
    date, stem = parts[-2], parts[-1].split(".")[0]
    if not (len(date) == 8 and date.isdigit() and stem.isdigit()):
        return None
    return date, int(stem)


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    path: Path
    key: str
    size: int


def discover(paths: Iterable[str | Path]) -> list[ArchiveFile]:
    """Files to import: each file named, and every ``*.lz4`` under each directory named, in
    the exchange's order (:func:`~runtime.hyperliquid.archive.sort_key`), each once.
    Raises :class:`ArchiveError` for a path that does not exist."""
    found: dict[Path, ArchiveFile] = {}
    for given in paths:
        path = Path(given)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*.lz4") if p.is_file())
        elif path.is_file():
            candidates = [path]
        else:
            raise ArchiveError(f"{path}: no such file or directory")
        for candidate in candidates:
            found.setdefault(
                candidate.resolve(),
                ArchiveFile(candidate, archive_key(candidate), candidate.stat().st_size),
            )
    return sorted(found.values(), key=lambda f: sort_key(f.key))


def identity(file: ArchiveFile) -> FileIdentity:
    with open(file.path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    return FileIdentity(file.key, file.size, hashlib.sha256(head).hexdigest())


def detect_format(file: ArchiveFile) -> ArchiveFormat:
    """From the path's format directory, else from the first non-empty line."""
    fmt = format_from_path(file.path)
    if fmt is not None:
        return fmt
    lines = (line for chunk in iter_line_chunks(file.path, label=file.key) for line in chunk.lines)
    first = next((line for line in lines if line.strip()), None)
    lines.close()
    fmt = format_from_line(first) if first is not None else None
    if fmt is not None:
        return fmt
    raise ArchiveError(
        f"{file.key}: unknown archive format (no node_trades, node_fills or "
        "node_fills_by_block directory in the path, and the first line is none of them)"
    )


def tracked_wallets(settings: Settings, session: Session) -> frozenset[str]:
    """TRACKED_WALLETS and the database's tracked wallets, lowercase: whose fills to keep."""
    database = TrackedWalletRepository(session).all_addresses()
    return frozenset(a.lower() for a in [*settings.tracked_wallets, *database])


@dataclass(slots=True)
class FileResult:
    key: str
    format: str
    status: str  # "done", "skipped" (done before), "failed", "superseded" (see _superseded)
    resumed_from: int = 0  # lines skipped as already imported
    lines_done: int = 0  # lines of the file accounted for, this run and before
    lines_read: int = 0  # lines read this run
    trades: int = 0  # derived this run
    trades_new: int = 0
    trades_duplicate: int = 0
    fills_new: int = 0
    fills_duplicate: int = 0
    activity: int = 0  # tracked wallets' rows of activity derived from the new trades
    bad_lines: int = 0  # this run
    bad_samples: list[str] = field(default_factory=list)  # "key:line: reason"
    unpaired_fills: int = 0
    skipped_dust: int = 0
    error: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class ImportSummary:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    gaps_healed: int = 0  # gaps the completely imported files cover (domain/archive/coverage)

    def total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.files)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def bad_samples(self) -> list[str]:
        return [s for f in self.files for s in f.bad_samples]

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "failed"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an import stands; passed to the progress callback after every chunk."""

    file_index: int  # 1-based
    file_count: int
    key: str
    bytes_done: int  # compressed bytes of all files, done so far
    bytes_total: int
    trades: int  # derived this run, all files
    elapsed: float  # seconds since the run started
    final: bool = False

    @property
    def rate(self) -> float:
        return self.trades / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True, slots=True)
class _Task:
    """One file to read: everything a decoding process needs (picklable)."""

    path: str
    key: str
    format: ArchiveFormat
    import_id: int
    resume: int
    wallets: frozenset[str]
    batch_size: int
    read_size: int
    pair_window: int
    max_bad_samples: int
    # PostgreSQL: the parser resolves wallet ids on a connection of its own (WalletIds).
    database_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class _FileEnd:
    status: str  # "done" / "failed"
    error: str | None
    lines_read: int
    unpaired_fills: int
    skipped_dust: int


@dataclass(slots=True)
class _Batch:
    """What one transaction stores for one file (picklable: crosses processes with --jobs)."""

    key: str
    import_id: int
    trades: PreparedTrades
    fills: list[Fill]
    progress: BatchProgress
    derived: int  # trades in it
    bad_lines: int  # counted with it (those up to progress.lines_done)
    bad_samples: list[str]  # "key:line: reason", the first few of the file
    offset: int  # compressed bytes of the file read so far
    end: _FileEnd | None = None  # the file's last batch: mark it done/failed with it


_DONE = object()


def _prefetched(chunks: Generator[LineChunk, None, None], depth: int = 2) -> Iterator[LineChunk]:
    """``chunks``, read ahead on a thread of their own: LZ4 decompression releases the GIL,
    so it runs beside the parsing. Exceptions (an ArchiveError) arrive in order."""
    slots: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                slots.put(chunk)
        except BaseException as exc:
            slots.put(exc)
        finally:
            chunks.close()  # the file, when the consumer stopped early
            slots.put(_DONE)

    reader = threading.Thread(target=read, name="archive-reader", daemon=True)
    reader.start()
    try:
        while (item := slots.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.05)


def file_batches(task: _Task, ship: bool = False) -> Iterator[_Batch]:
    """Read one file from ``task.resume`` on and yield its batches, the last one with the
    file's end (done, or failed with the error). Runs in the importing process or in a
    decoding process (``ship``: leave the trades out of the batch, which then carries
    their COPY text and bar deltas only). Writes nothing but wallet dictionary rows (with
    ``task.database_url``: the batch's addresses resolved to ids, see ``WalletIds``)."""
    resolve = WalletIds.connect(task.database_url) if task.database_url else None
    try:
        yield from _file_batches(task, ship, resolve)
    finally:
        if resolve is not None:
            resolve.close()


def _file_batches(task: _Task, ship: bool, resolve: WalletIds | None) -> Iterator[_Batch]:
    decoder = ArchiveDecoder(task.format, task.wallets, task.pair_window)
    carried: list[BadLineReport] = []  # bad lines past the resume line: a later batch
    samples = 0
    offset = 0

    def batch(end: _FileEnd | None = None) -> _Batch:
        nonlocal carried, samples
        out = decoder.take()
        lines_done = decoder.resume_line()
        bad = carried + out.bad
        now = [b for b in bad if b.line <= lines_done]
        carried = [b for b in bad if b.line > lines_done]
        room = max(0, task.max_bad_samples - samples)
        sample_lines = [f"{task.key}:{b.line}: {b.reason}" for b in now[:room]]
        samples += len(sample_lines)
        # COPY text and bar deltas are made here, so the thread (or process) that writes
        # mostly waits on PostgreSQL while this one parses the next batch.
        prepared = TradeRepository.prepare(out.trades, task.wallets, resolve)
        if ship:
            prepared = replace(prepared, trades=())
        return _Batch(
            task.key,
            task.import_id,
            prepared,
            out.fills,
            BatchProgress(
                lines_done=lines_done,
                bad_lines=[f"line {b.line}: {b.reason}" for b in now],
                min_time=prepared.min_time,
                max_time=prepared.max_time,
            ),
            derived=len(out.trades),
            bad_lines=len(now),
            bad_samples=sample_lines,
            offset=offset,
            end=end,
        )

    error: str | None = None
    step = min(_SLICE, task.batch_size)
    chunks = iter_line_chunks(
        task.path, skip=task.resume, label=task.key, chunk_size=task.read_size
    )
    try:
        for chunk in _prefetched(chunks):
            offset = chunk.offset
            # A chunk is what one read decompressed to (up to a 4 MiB LZ4 block and more);
            # feeding it in slices keeps batches near batch_size.
            for start in range(0, len(chunk.lines), step):
                decoder.feed(
                    LineChunk(chunk.first + start, chunk.lines[start : start + step], offset)
                )
                out = decoder.out
                if len(out.trades) >= task.batch_size or len(out.fills) >= task.batch_size:
                    yield batch()
    except ArchiveError as exc:
        error = str(exc)
    else:
        decoder.finish()
    counts = decoder.counts
    yield batch(
        _FileEnd(
            "failed" if error else "done", error, counts.lines, counts.unpaired_fills,
            counts.skipped_dust,
        )
    )  # fmt: skip


def store(database: Database, batch: _Batch) -> tuple[BulkResult, BulkResult]:
    """One batch in one transaction: trades (bars folded from the new ones), fills, and the
    file's progress row — so the row never claims lines whose rows are not stored."""
    with database.session() as session:
        trades = TradeRepository(session).add_batch(batch.trades, fold_bars=True)
        fills = FillRepository(session).add_batch(batch.fills)
        repository = ArchiveImportRepository(session)
        repository.record(
            batch.import_id,
            replace(
                batch.progress,
                trades_new=trades.new,
                trades_duplicate=trades.duplicates,
                fills_new=fills.new,
                fills_duplicate=fills.duplicates,
            ),
        )
        if batch.end is not None:
            repository.finish(batch.import_id, batch.end.status, batch.end.error)
    return trades, fills


def _account(result: FileResult, batch: _Batch, trades: BulkResult, fills: BulkResult) -> None:
    result.trades += batch.derived
    result.trades_new += trades.new
    result.trades_duplicate += trades.duplicates
    result.fills_new += fills.new
    result.fills_duplicate += fills.duplicates
    result.activity += trades.activity
    result.bad_lines += batch.bad_lines
    result.bad_samples += batch.bad_samples
    result.lines_done = batch.progress.lines_done
    if batch.end is not None:
        result.status, result.error = batch.end.status, batch.end.error
        result.lines_read = batch.end.lines_read
        result.unpaired_fills = batch.end.unpaired_fills
        result.skipped_dust = batch.end.skipped_dust


class _Writer:
    """Stores batches on a thread of its own, in submission order, one transaction each."""

    def __init__(self, database: Database, result: FileResult) -> None:
        self.database = database
        self.result = result
        self.error: BaseException | None = None
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._run, name="archive-writer", daemon=True)
        self._thread.start()

    def submit(self, batch: _Batch) -> None:
        if self.error is not None:
            raise self.error
        self._queue.put(batch)

    def close(self) -> None:
        """Wait for every submitted batch; raises the writer's error, if any."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self.error is not None:
                continue  # drain: the submitter learns of the error on its next call
            try:
                _account(self.result, batch, *store(self.database, batch))
            except BaseException as exc:
                self.error = exc


def _decode_process(tasks: Any, results: Any) -> None:
    """A decoding process (``jobs`` > 1): files from ``tasks`` → batches on ``results``."""
    gc.set_threshold(*GC_THRESHOLDS)  # a spawned process starts with the default
    while (task := tasks.get()) is not None:
        try:
            for batch in file_batches(task, ship=True):
                results.put(batch)
        except BaseException as exc:  # reported as the file's failure; the process goes on
            results.put(("crash", task.key, f"{task.key}: {type(exc).__name__}: {exc}"))


class ArchiveImporter:
    """Imports archive files; see the module docstring. Not thread-safe; one run at a time.

    ``jobs`` > 1 (PostgreSQL only) parses that many files at once in processes of their
    own, which hand their batches — COPY text and bar deltas, made there — to this process
    to store: parsing is what limits one process.
    """

    def __init__(
        self,
        database: Database,
        wallets: Iterable[str] = (),
        *,
        batch_size: int = DEFAULT_BATCH,
        force: bool = False,
        progress: Callable[[Progress], None] | None = None,
        pair_window: int = 10_000,
        max_bad_samples: int = 5,
        read_size: int = 1 << 20,
        jobs: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if jobs < 1:
            raise ValueError("jobs must be at least 1")
        self.database = database
        self.wallets = frozenset(w.lower() for w in wallets)
        self.batch_size = batch_size
        self.force = force
        self.progress = progress
        self.pair_window = pair_window
        self.max_bad_samples = max_bad_samples
        self.read_size = read_size  # compressed bytes read at a time (a chunk of lines)
        self.jobs = jobs if database.dialect == "postgresql" else 1
        self._started = 0.0
        self._trades = 0
        self._bytes_before = 0
        self._bytes_total = 0

    def run(self, files: Sequence[ArchiveFile]) -> ImportSummary:
        summary = ImportSummary()
        self._started = time.perf_counter()
        self._trades = 0
        self._bytes_before = 0
        self._bytes_total = sum(f.size for f in files)
        fills_hours = {
            hour
            for f in files
            if format_from_path(f.key) in _FILL_FORMATS and (hour := hour_of(f.key)) is not None
        }
        pending: list[tuple[_Task, FileResult, ArchiveFile]] = []
        for file in files:
            if self._superseded(file, fills_hours):
                summary.files.append(FileResult(file.key, "node_trades", "superseded"))
                self._bytes_before += file.size
                continue
            task, result = self._begin(file)
            summary.files.append(result)
            if task is None:
                self._bytes_before += file.size
            else:
                pending.append((task, result, file))
        if self.jobs > 1 and len(pending) > 1:
            self._run_processes(pending)
        else:
            for index, (task, result, file) in enumerate(pending, 1):
                self._run_here(task, result, file, index, len(pending))
                self._bytes_before += file.size
        summary.gaps_healed = heal_covered_gaps(self.database, self.wallets)
        summary.seconds = time.perf_counter() - self._started
        self._report(len(pending), len(pending), "", 0, final=True)
        return summary

    def _begin(self, file: ArchiveFile) -> tuple[_Task | None, FileResult]:
        """The file's progress row (created or found); a task unless there is nothing to do."""
        try:
            fmt = detect_format(file)
            ident = identity(file)
        except (ArchiveError, OSError) as exc:
            message = str(exc) if isinstance(exc, ArchiveError) else f"{file.key}: {exc}"
            return None, FileResult(file.key, "?", "failed", error=message)
        with self.database.session() as session:
            row = ArchiveImportRepository(session).start(
                ident, fmt, str(file.path), restart=self.force
            )
            import_id, status, resume = row.id, row.status, row.lines_done
        result = FileResult(file.key, fmt, "partial", resumed_from=resume, lines_done=resume)
        if status == "done":
            result.status = "skipped"
            return None, result
        task = _Task(
            str(file.path), file.key, fmt, import_id, resume, self.wallets, self.batch_size,
            self.read_size, self.pair_window, self.max_bad_samples,
            self.database.url if self.database.dialect == "postgresql" else None,
        )  # fmt: skip
        return task, result

    def _superseded(self, file: ArchiveFile, fills_hours: set[tuple[str, int]]) -> bool:
        """A node_trades hour that node_fills also covers (2025-05-25 h14-23): its trades
        would be stored twice, once under their real tid (from the fills) and once under a
        synthetic one. The fills win — in this run's files or among the files imported."""
        hour = hour_of(file.key)
        if hour is None or format_from_path(file.key) != "node_trades":
            return False
        if hour in fills_hours:
            return True
        date, h = hour
        keys = [f"{fmt}/hourly/{date}/{h}.lz4" for fmt in _FILL_FORMATS]
        with self.database.session() as session:
            return ArchiveImportRepository(session).any_done(keys)

    def _report(self, index: int, count: int, key: str, offset: int, final: bool = False) -> None:
        if self.progress is not None:
            self.progress(
                Progress(
                    index, count, key, self._bytes_before + offset, self._bytes_total,
                    self._trades, time.perf_counter() - self._started, final,
                )
            )  # fmt: skip

    def _run_here(
        self, task: _Task, result: FileResult, file: ArchiveFile, index: int, count: int
    ) -> None:
        """Parse on this thread, store on a writer thread: the two overlap."""
        started = time.perf_counter()
        writer = _Writer(self.database, result)
        try:
            for batch in file_batches(task):
                writer.submit(batch)
                self._trades += batch.derived
                self._report(index, count, file.key, batch.offset)
        finally:
            writer.close()
        result.seconds = time.perf_counter() - started

    def _run_processes(self, pending: list[tuple[_Task, FileResult, ArchiveFile]]) -> None:
        """Parse ``jobs`` files at once in processes of their own; store here, each file's
        batches in order (a process sends a file's batches in order)."""
        context = parsing_context()
        tasks = context.Queue()
        results = context.Queue(maxsize=2 * self.jobs)
        for task, _, _ in pending:
            tasks.put(task)
        workers = [
            context.Process(target=_decode_process, args=(tasks, results), daemon=True)
            for _ in range(min(self.jobs, len(pending)))
        ]
        for _ in workers:
            tasks.put(None)
        for worker in workers:
            worker.start()
        by_key = {task.key: (result, file) for task, result, file in pending}
        offsets: dict[str, int] = {}
        open_files = set(by_key)
        started = time.perf_counter()
        try:
            while open_files:
                try:
                    item = results.get(timeout=1.0)
                except queue.Empty:
                    if not any(w.is_alive() for w in workers):
                        break  # a process died without a word: its file stays partial
                    continue
                if isinstance(item, tuple):  # ("crash", key, message)
                    _, key, message = item
                    result = by_key[key][0]
                    result.status, result.error = "failed", message
                    open_files.discard(key)
                    continue
                result, file = by_key[item.key]
                _account(result, item, *store(self.database, item))
                self._trades += item.derived
                offsets[item.key] = item.offset
                if item.end is not None:
                    open_files.discard(item.key)
                    offsets[item.key] = file.size
                    result.seconds = time.perf_counter() - started
                self._report(
                    len(by_key) - len(open_files), len(by_key), item.key, sum(offsets.values())
                )
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                worker.join()
        for key in open_files:  # the rows stay partial: a rerun resumes them
            result = by_key[key][0]
            result.status, result.error = "failed", f"{key}: the decoding process stopped"
