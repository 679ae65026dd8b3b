"""Per-file progress of archive imports, keyed on the file's identity (key, size, head)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from models.archive_import import ArchiveImport
from models.base import utcnow
from models.repositories.base import Repository

MAX_BAD_SAMPLES = 10


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What makes two files the same archive file: key, size and a digest of the first MiB."""

    key: str
    size: int
    head_digest: str


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """What one committed batch adds to its file's row."""

    lines_done: int
    trades_new: int = 0
    trades_duplicate: int = 0
    fills_new: int = 0
    fills_duplicate: int = 0
    bad_lines: Sequence[str] = ()  # "line N: reason"
    min_time: int | None = None
    max_time: int | None = None


class ArchiveImportRepository(Repository[ArchiveImport]):
    model = ArchiveImport

    def find(self, identity: FileIdentity) -> ArchiveImport | None:
        return self.session.scalars(
            select(ArchiveImport).where(
                ArchiveImport.key == identity.key,
                ArchiveImport.size == identity.size,
                ArchiveImport.head_digest == identity.head_digest,
            )
        ).first()

    def any_done(self, keys: Sequence[str]) -> bool:
        """Whether a file under any of ``keys`` has been imported completely."""
        stmt = select(ArchiveImport.id).where(
            ArchiveImport.key.in_(list(keys)), ArchiveImport.status == "done"
        )
        return self.session.scalars(stmt.limit(1)).first() is not None

    def start(
        self, identity: FileIdentity, fmt: str, path: str, restart: bool = False
    ) -> ArchiveImport:
        """The file's row, created ``partial`` on first sight; idempotency key: the identity.

        ``restart`` forgets earlier progress (the file is read again from its first line).
        """
        row = self.find(identity)
        if row is None:
            row = self.add(
                ArchiveImport(
                    key=identity.key, size=identity.size, head_digest=identity.head_digest,
                    format=fmt, path=path, status="partial", lines_done=0, trades_new=0,
                    trades_duplicate=0, fills_new=0, fills_duplicate=0, bad_lines=0,
                    bad_samples="",
                )
            )  # fmt: skip
            return row
        row.path, row.format, row.updated_at, row.error = path, fmt, utcnow(), None
        if restart:
            row.lines_done = row.trades_new = row.trades_duplicate = 0
            row.fills_new = row.fills_duplicate = row.bad_lines = 0
            row.bad_samples, row.min_time, row.max_time = "", None, None
            row.started_at, row.finished_at = utcnow(), None
        if row.status != "done" or restart:
            row.status = "partial"
        self.session.flush()
        return row

    def record(self, import_id: int, progress: BatchProgress) -> None:
        """Add a committed batch's counts; call in the transaction that stored the batch, so
        the row never claims lines whose rows are not stored (and never misses any)."""
        row = self.session.get(ArchiveImport, import_id, with_for_update=True)
        if row is None:
            raise LookupError(f"archive import {import_id} not found")
        row.lines_done = max(row.lines_done, progress.lines_done)
        row.trades_new += progress.trades_new
        row.trades_duplicate += progress.trades_duplicate
        row.fills_new += progress.fills_new
        row.fills_duplicate += progress.fills_duplicate
        row.bad_lines += len(progress.bad_lines)
        kept = [s for s in row.bad_samples.split("\n") if s]
        if len(kept) < MAX_BAD_SAMPLES and progress.bad_lines:
            kept += list(progress.bad_lines[: MAX_BAD_SAMPLES - len(kept)])
            row.bad_samples = "\n".join(kept)
        if progress.min_time is not None:
            row.min_time = (
                progress.min_time if row.min_time is None else min(row.min_time, progress.min_time)
            )
        if progress.max_time is not None:
            row.max_time = (
                progress.max_time if row.max_time is None else max(row.max_time, progress.max_time)
            )
        row.updated_at = utcnow()
        self.session.flush()

    def finish(self, import_id: int, status: str, error: str | None = None) -> None:
        """Mark the file ``done`` or ``failed`` (with the error); idempotent."""
        row = self.session.get(ArchiveImport, import_id)
        if row is None:
            raise LookupError(f"archive import {import_id} not found")
        row.status, row.error, row.updated_at = status, error, utcnow()
        if status == "done":
            row.finished_at = row.updated_at
        self.session.flush()
