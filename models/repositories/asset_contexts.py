"""Asset contexts: first one per (coin, time bucket) wins."""

from __future__ import annotations

from collections.abc import Sequence

from events import AssetContext
from models.asset_context import AssetContextSnapshot
from models.repositories.snapshots import BulkResult, SnapshotWriter


class AssetContextRepository(SnapshotWriter):
    table = AssetContextSnapshot.__table__  # type: ignore[assignment]
    partitioned = True

    def add_batch(self, contexts: Sequence[AssetContext], bucket_ms: int) -> BulkResult:
        """Store contexts; idempotency key (coin, time floored to ``bucket_ms``)."""
        rows: dict[tuple[str, int], dict[str, object]] = {}
        for c in contexts:
            bucket = c.time - c.time % bucket_ms
            # Within one batch the earliest context of a bucket wins, as across batches.
            if (c.coin, bucket) in rows:
                continue
            rows[(c.coin, bucket)] = {
                "coin": c.coin,
                "time": bucket,
                "funding": c.funding,
                "open_interest": c.open_interest,
                "mark_px": c.mark_px,
                "oracle_px": c.oracle_px,
                "mid_px": c.mid_px,
                "premium": c.premium,
                "day_ntl_vlm": c.day_ntl_vlm,
                "prev_day_px": c.prev_day_px,
            }
        result = self._insert(list(rows.values()))
        return BulkResult(new=result.new, duplicates=len(contexts) - result.new)
