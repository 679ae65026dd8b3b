"""The ``ingest`` queue: batches from the ingester become rows, exactly once.

Every task here takes one positional argument — the batch exactly as the ingester
published it (``events.encode_batch`` for market data, a session record for
``persist.session``) — writes it with ONE bulk, idempotent repository call in ONE
transaction, and returns what it did::

    {"new": rows inserted, "duplicates": rows already stored}

Shared contract (see ``tasks/base.py``): queue ``ingest``; idempotent (the key of each
table absorbs replays, redeliveries and two ingesters side by side); retries transient
database/broker errors with jittered backoff; never retries a malformed batch — it is
dead-lettered with the reason and acknowledged.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from events import MAX_TIME_MS, MIN_TIME_MS, MalformedPayload, batch_argument, decode_batch
from models.gap import GAP_STREAMS
from models.repositories import (
    AssetContextRepository,
    FillRepository,
    GapRepository,
    PositionRepository,
    SessionRepository,
    TradeRepository,
)
from models.repositories.gaps import Recorded
from runtime.tracked_wallets import tracked_wallet_set
from tasks.alerts.forward import forward_new_fills, forward_new_trades
from tasks.base import HyperwatchTask

Result = dict[str, int]


@shared_task(name="hyperwatch.persist.trades", bind=True, base=HyperwatchTask)
def persist_trades(self: HyperwatchTask, payload: Any) -> Result:
    """Store a trade batch; fold the *new* trades into their 1-minute bars and record every
    tracked wallet's side of them in ``user_fills`` (wallet activity).

    Idempotency key (coin, time, tid). Bars and activity use only the rows this transaction
    inserted, in the same transaction, so a replayed batch neither duplicates trades nor
    double-counts volume, trade count or CVD; activity rows key on (user, tid) besides.
    The tracked wallets are this process's set (runtime/tracked_wallets.py, at most
    ``WALLET_SET_REFRESH_S`` old). Returns new, duplicates, bars touched and activity rows.
    """
    batch = decode_batch(payload, "trades")
    with self.transaction() as session:
        wallets = tracked_wallet_set(self.settings).current(session)
        result = TradeRepository(session).add_batch(batch.events, fold_bars=True, wallets=wallets)
    self.confirm(batch)
    self.count_rows("trade_snapshots", result.new, result.duplicates)
    self.count_rows("user_fills", result.activity, result.activity_duplicates)
    forward_new_trades(self, result.inserted)  # whale-trade alerts: new trades only
    return {
        "new": result.new,
        "duplicates": result.duplicates,
        "bars": result.bars,
        "activity": result.activity,
    }


@shared_task(name="hyperwatch.persist.asset_contexts", bind=True, base=HyperwatchTask)
def persist_asset_contexts(self: HyperwatchTask, payload: Any) -> Result:
    """Store asset contexts, the first per (coin, ASSET_CONTEXT_BUCKET_S bucket) winning.

    Idempotency key (coin, bucket): a replay, or a second context in the same bucket, is a
    duplicate.
    """
    batch = decode_batch(payload, "asset_contexts")
    bucket_ms = self.settings.asset_context_bucket_s * 1000
    with self.transaction() as session:
        result = AssetContextRepository(session).add_batch(batch.events, bucket_ms)
    self.confirm(batch)
    self.count_rows("asset_context_snapshots", result.new, result.duplicates)
    return {"new": result.new, "duplicates": result.duplicates}


@shared_task(name="hyperwatch.persist.positions", bind=True, base=HyperwatchTask)
def persist_positions(self: HyperwatchTask, payload: Any) -> Result:
    """Store tracked wallets' position snapshots. Idempotency key (user, coin, time)."""
    batch = decode_batch(payload, "positions")
    with self.transaction() as session:
        result = PositionRepository(session).add_batch(batch.events)
    self.confirm(batch)
    self.count_rows("position_snapshots", result.new, result.duplicates)
    return {"new": result.new, "duplicates": result.duplicates}


@shared_task(name="hyperwatch.persist.fills", bind=True, base=HyperwatchTask)
def persist_fills(self: HyperwatchTask, payload: Any) -> Result:
    """Store tracked wallets' own fills. Idempotency key (user, tid); a row derived from the
    public trade is completed, never doubled (``FillRepository.add_batch``)."""
    batch = decode_batch(payload, "fills")
    with self.transaction() as session:
        result = FillRepository(session).add_batch(batch.events)
    self.confirm(batch)
    self.count_rows("user_fills", result.new, result.duplicates)
    forward_new_fills(self, batch.events, result.inserted)  # wallet_liquidated alerts
    return {"new": result.new, "duplicates": result.duplicates}


@shared_task(name="hyperwatch.persist.session", bind=True, base=HyperwatchTask)
def persist_session(self: HyperwatchTask, payload: Any) -> Result:
    """Upsert the ingester's record of one connection session. Idempotency key ``id``.

    Records arrive repeatedly as the session goes on (and possibly out of order); counters
    only grow and an ended session stays ended (``SessionRepository.upsert``). Returns
    ``new`` 1 when the session was first seen, else ``duplicates`` 1 (an update).
    """
    record = session_record(payload)
    for attempt in (1, 2):
        try:
            with self.transaction() as session:
                existed, gaps = store_session_record(session, record)
            break
        except IntegrityError:
            # Two records of a brand-new session raced to insert it; the row exists now,
            # so the second attempt updates it. Not a poison payload.
            if attempt == 2:
                raise
    if gaps.closed:
        # recentTrades reaches back only seconds: heal now, not at the next sweep.
        self.app.send_task(HEAL_TASK, queue="maintenance", routing_key="maintenance")
    new = 0 if existed else 1
    self.count_rows("sessions", new, 1 - new)
    return {"new": new, "duplicates": 1 - new}


def store_session_record(session: Session, record: dict[str, Any]) -> tuple[bool, Recorded]:
    """Upsert a validated session record (:func:`session_record`) and its gaps, in the
    caller's transaction; returns whether the session existed and what the gaps did. Also
    how ``hyperwatch replay --into db`` stores its sessions."""
    repository = SessionRepository(session)
    existed = repository.get(record["id"]) is not None
    repository.upsert(record)
    gaps = GapRepository(session).record(
        {**gap, "source": record.get("source", "")} for gap in gap_records(record)
    )
    return existed, gaps


_SESSION_COUNTERS = ("frames", "events", "malformed", "duplicates")
HEAL_TASK = "hyperwatch.maintenance.heal_gaps"


def session_record(payload: Any) -> dict[str, Any]:
    """Validate a session record from the wire (JSON text or the object); raises
    MalformedPayload with the reason."""
    payload = batch_argument(payload)
    if not isinstance(payload, dict):
        raise MalformedPayload(f"session record must be an object, got {type(payload).__name__}")
    if not isinstance(payload.get("id"), str) or not payload["id"]:
        raise MalformedPayload("session.id: expected a non-empty string")
    if not isinstance(payload.get("source", ""), str):
        raise MalformedPayload("session.source: expected a string")
    if not _is_time(payload.get("started_at")):
        raise MalformedPayload("session.started_at: expected integer milliseconds")
    if payload.get("ended_at") is not None and not _is_time(payload["ended_at"]):
        raise MalformedPayload("session.ended_at: expected integer milliseconds or null")
    for name in _SESSION_COUNTERS:
        if not _is_int(payload.get(name, 0)) or payload.get(name, 0) < 0:
            raise MalformedPayload(f"session.{name}: expected a non-negative integer")
    if not isinstance(payload.get("gaps") or [], list):
        raise MalformedPayload("session.gaps: expected a list")
    gap_records(payload)
    if not isinstance(payload.get("end_reason") or "", str):
        raise MalformedPayload("session.end_reason: expected a string")
    for name in ("id", "source", "end_reason"):
        # PostgreSQL text cannot hold NUL; the driver would raise a bare ValueError.
        if "\x00" in (payload.get(name) or ""):
            raise MalformedPayload(f"session.{name}: contains a NUL character")
    return payload


def gap_records(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The session's gaps that carry an id (records from before gap ids had none and stay
    on the session row only); raises MalformedPayload naming the bad field."""
    out = []
    for i, gap in enumerate(record.get("gaps") or []):
        where = f"session.gaps[{i}]"
        if not isinstance(gap, dict):
            raise MalformedPayload(f"{where}: expected an object")
        if gap.get("id") is None:
            continue
        if not isinstance(gap["id"], str) or not 0 < len(gap["id"]) <= 36:
            raise MalformedPayload(f"{where}.id: expected a string of at most 36 characters")
        if gap.get("stream") not in GAP_STREAMS:
            raise MalformedPayload(f"{where}.stream: expected one of {', '.join(GAP_STREAMS)}")
        key = gap.get("key")
        if not isinstance(key, str) or not 0 < len(key) <= 64 or "\x00" in key:
            raise MalformedPayload(f"{where}.key: expected a coin or address")
        if not _is_time(gap.get("from_ms")):
            raise MalformedPayload(f"{where}.from_ms: expected integer milliseconds")
        if gap.get("to_ms") is not None and not _is_time(gap["to_ms"]):
            raise MalformedPayload(f"{where}.to_ms: expected integer milliseconds or null")
        if not isinstance(gap.get("ended_by") or "", str) or "\x00" in (gap.get("ended_by") or ""):
            raise MalformedPayload(f"{where}.ended_by: expected a string")
        if gap.get("opened_at") and not _is_time(gap["opened_at"]):
            raise MalformedPayload(f"{where}.opened_at: expected integer milliseconds")
        out.append(gap)
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_time(value: Any) -> bool:
    """Integer milliseconds a date can hold (the row stores a timestamp)."""
    return _is_int(value) and MIN_TIME_MS <= value <= MAX_TIME_MS
