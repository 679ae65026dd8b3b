"""The cold tier's record: one row per (table, day) exported to Parquet.

Retention exports a day partition before it drops it (domain/coldtier/). The row says how
far that got: ``exported`` (the file is written, renamed into place and verified: its row
count and key checksum match the partition's), ``dropped`` (then the partition was
dropped), ``failed`` (the export or its verification failed: the partition is kept, the
reason is in ``error``, health reports it until a later run succeeds). A rerun skips an
``exported`` day whose file is still there with the recorded size, so an interrupted
retention resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Date, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime, utcnow

COLD_EXPORT_STATUSES = ("exported", "dropped", "failed")


class ColdExport(Base):
    __tablename__ = "cold_exports"
    __table_args__ = (
        # Health reads the failed ones.
        Index(None, "status"),
    )

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    # count:sum of DuckDB hash() of each row's key, over the partition and over the file.
    checksum: Mapped[str] = mapped_column(String(80), default="")
    path: Mapped[str] = mapped_column(Text, default="")
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
