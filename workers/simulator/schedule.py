"""When blocks are released: the pacing between a block source and the wall clock.

A :class:`BlockSource` hands out the blocks due at a given elapsed time since the feed
started. The generated source releases block *k* at ``k * block_ms`` and stamps it
``origin + k * block_ms`` (origin = ``--start-time`` or the wall clock at start), so block
times follow the clock while the content stays a function of the seed alone.
"""

from __future__ import annotations

from typing import Protocol

from workers.simulator.market import Block, Market


class BlockSource(Protocol):
    def due(self, elapsed_ms: float, limit: int) -> list[Block]:
        """Blocks whose release time is ≤ ``elapsed_ms``, at most ``limit`` of them."""

    def next_due_ms(self) -> float | None:
        """Release time of the next block, or None when the source is exhausted."""


class GeneratedBlocks:
    """Blocks from the :class:`Market` generator, one every ``block_ms``."""

    def __init__(self, market: Market, block_ms: float, origin_ms: int) -> None:
        if block_ms <= 0:
            raise ValueError("block_ms must be positive")
        self.market = market
        self.block_ms = block_ms
        self.origin_ms = origin_ms
        self._index = 0

    def due(self, elapsed_ms: float, limit: int) -> list[Block]:
        blocks: list[Block] = []
        while len(blocks) < limit and self._index * self.block_ms <= elapsed_ms:
            time_ms = self.origin_ms + int(self._index * self.block_ms)
            blocks.append(self._make(self._index, time_ms))
            self._index += 1
        return blocks

    def _make(self, index: int, time_ms: int) -> Block:
        """Block ``index``, stamped ``time_ms`` (a cascade sizes and levels it first)."""
        return self.market.make_block(time_ms)

    def next_due_ms(self) -> float | None:
        return self._index * self.block_ms
