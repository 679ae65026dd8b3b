"""The wallet dictionary: each address a trade names, stored once, referred to by an int4 id.

A trade names two wallets; as ``bytea`` they cost 22 bytes each on every row, as ids into
this table 4 (migration 0012; measured in docs/DATABASE.md "Sizing": with the trade columns
ordered by alignment, 150.4 bytes a trade instead of 190.1). The dictionary grows with the
distinct addresses, not with the trades. Rows are never updated or deleted while workers
run: writers cache address → id in process (models/repositories/wallet_ids.py).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Identity, Integer
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.hexbytes import HexBytes, length_check


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (
        # As trade_snapshots.buyer/seller refused before 0012: at most 42 characters.
        CheckConstraint(length_check("address", 42), name="address_length").ddl_if(
            dialect="postgresql"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    # Bytes on PostgreSQL in the encoding of models/hexbytes.py, the text on SQLite.
    address: Mapped[str] = mapped_column(HexBytes(42), unique=True)
