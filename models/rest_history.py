"""What REST healing keeps beside the trades: 1-minute candles and hourly funding rates.

``rest_bars`` holds ``candleSnapshot`` 1m candles of minutes that lay wholly inside a gap
REST could not fill trade by trade (``recentTrades`` reaches back only seconds). They are
kept apart from ``trade_bars`` on purpose: trade bars are folded additively from newly
stored trades, so a candle written there would be counted again when an archive import
later brings that minute's trades. Readers prefer ``trade_bars`` and fall back to these,
which are marked by their table as coming from REST.

``funding_rates`` holds ``fundingHistory`` rows (the hourly rate and premium) for the hours
a gap spanned; the live feed's asset contexts carry the rate only while connected.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, Money, UtcDateTime, utcnow


class RestBar(Base):
    __tablename__ = "rest_bars"

    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    minute: Mapped[int] = mapped_column(Millis, primary_key=True)
    open: Mapped[Decimal] = mapped_column(Money())
    high: Mapped[Decimal] = mapped_column(Money())
    low: Mapped[Decimal] = mapped_column(Money())
    close: Mapped[Decimal] = mapped_column(Money())
    volume: Mapped[Decimal] = mapped_column(Money())
    trade_count: Mapped[int] = mapped_column(Integer)
    fetched_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)


class FundingRate(Base):
    __tablename__ = "funding_rates"

    coin: Mapped[str] = mapped_column(String(40), primary_key=True)
    time: Mapped[int] = mapped_column(Millis, primary_key=True)
    rate: Mapped[Decimal] = mapped_column(Money())
    premium: Mapped[Decimal | None] = mapped_column(Money(), nullable=True)
