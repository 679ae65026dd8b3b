"""Progress of ``hyperwatch archive import``, one row per archive file.

A file is known by its identity — its archive key (``node_fills_by_block/hourly/20250801/
0.lz4``, the path from the format directory on), its size and the SHA-256 of its first MiB —
not by where it lies, so a copy moved elsewhere is still recognised and a changed file is a
new one. Each batch of rows the import commits updates the file's row in the same
transaction, so ``lines_done`` is exactly the lines whose every product is stored: a rerun
skips a ``done`` file and resumes any other after ``lines_done``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, Millis, UtcDateTime, utcnow

# status: "partial" (started, or stopped part-way: resumable), "done", "failed" (a fatal
# error in the file; the rows committed before it stay, a rerun tries again).
ARCHIVE_IMPORT_STATUSES = ("partial", "done", "failed")


class ArchiveImport(Base):
    __tablename__ = "archive_imports"
    __table_args__ = (
        # The file's identity: a rerun finds its row by it.
        UniqueConstraint("key", "size", "head_digest"),
        # `hyperwatch archive import` lists files by recency.
        Index(None, "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    head_digest: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(24))
    path: Mapped[str] = mapped_column(Text)  # where it was read last
    status: Mapped[str] = mapped_column(String(16))
    lines_done: Mapped[int] = mapped_column(BigInteger, default=0)
    trades_new: Mapped[int] = mapped_column(BigInteger, default=0)
    trades_duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    fills_new: Mapped[int] = mapped_column(BigInteger, default=0)
    fills_duplicate: Mapped[int] = mapped_column(BigInteger, default=0)
    bad_lines: Mapped[int] = mapped_column(BigInteger, default=0)
    # The first bad lines' "line N: reason", one per line (at most MAX_BAD_SAMPLES).
    bad_samples: Mapped[str] = mapped_column(Text, default="")
    # Trade times (ms) the file's stored trades span.
    min_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    max_time: Mapped[int | None] = mapped_column(Millis, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
