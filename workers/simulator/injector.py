"""Carrying out faults (see :mod:`workers.simulator.faults` for what each kind means).

The injector acts on the connections open at the moment, counts every fault in the stats
and writes it to the ground truth, so a test can line up what a client saw with what the
exchange did. Scheduled faults (``--drop-every`` …) run as one task each.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from runtime.clock import Clock
from workers.simulator.connection import Connection
from workers.simulator.faults import FaultPlan, FaultRequest, malformed_frame
from workers.simulator.groundtruth import GroundTruthWriter
from workers.simulator.hub import Hub
from workers.simulator.stats import Stats


class FaultInjector:
    """Applies faults to the hub's connections. Owned by the server's event loop."""

    def __init__(
        self,
        hub: Hub,
        stats: Stats,
        recorder: GroundTruthWriter | None,
        clock: Clock,
        seed: int,
        plan: FaultPlan,
    ) -> None:
        self.hub = hub
        self.stats = stats
        self.recorder = recorder
        self.clock = clock
        self.plan = plan
        self._rng = random.Random(seed ^ 0xFA_017)
        if plan.malformed_rate > 0:
            hub.before_data = self._maybe_malformed

    def _record(self, kind: str, **details: Any) -> None:
        self.stats.fault(kind)
        if self.recorder is not None:
            self.recorder.fault(kind, self.clock.time_ms(), **details)

    def apply(self, request: FaultRequest) -> dict[str, Any]:
        """Carry out one fault now; a summary of what it touched."""
        if request.kind == "drop":
            return {"kind": "drop", "connections": self.drop()}
        if request.kind == "stall":
            return {
                "kind": "stall",
                "seconds": request.seconds,
                "connections": self.stall(request.seconds),
            }
        if request.kind == "malformed":
            return {"kind": "malformed", "frames": self.malformed(request.count)}
        if request.kind == "silence":
            return {
                "kind": "silence",
                "topic": request.topic,
                "connections": self.silence(request.topic),
            }
        return {"kind": "duplicate", "connections": self.duplicate()}

    def drop(self) -> int:
        victims = [c for c in self.hub.connections.values() if not c.closed]
        for conn in victims:
            conn.abort()
        self._record("drop", connections=len(victims))
        return len(victims)

    def stall(self, seconds: float) -> int:
        until = self.clock.monotonic() + seconds
        victims = [c for c in self.hub.connections.values() if not c.closed]
        for conn in victims:
            conn.stall(until)
        self._record("stall", seconds=seconds, connections=len(victims))
        return len(victims)

    def silence(self, topic: str) -> int:
        """Stop pushing ``topic`` to its current subscribers until they unsubscribe it."""
        touched = self.hub.silence(topic)
        self._record("silence", topic=topic, connections=touched)
        return touched

    def malformed(self, count: int) -> int:
        sent = 0
        for conn in list(self.hub.connections.values()):
            for _ in range(count):
                sent += self._send_garbage(conn, conn.last_trades_frame)
        return sent

    def duplicate(self) -> int:
        touched = trades = 0
        for conn in list(self.hub.connections.values()):
            frame = conn.last_trades_frame
            if frame is not None and conn.send(frame):
                touched += 1
                trades += frame.count(b'"tid":')
        self._record("duplicate", connections=touched, trades=trades)
        return touched

    def _maybe_malformed(self, conn: Connection, frame: bytes) -> None:
        if self._rng.random() < self.plan.malformed_rate:
            self._send_garbage(conn, frame)

    def _send_garbage(self, conn: Connection, sample: bytes | None) -> int:
        variant, junk = malformed_frame(self._rng, sample)
        if not conn.send(junk):
            return 0
        self._record("malformed", connection=conn.id, variant=variant)
        return 1

    async def run_schedule(self) -> None:
        """Run the plan's periodic faults until cancelled."""
        plan = self.plan
        jobs = []
        if plan.drop_every_s:
            jobs.append(self._every(plan.drop_every_s, self.drop))
        if plan.stall_every_s:
            jobs.append(self._every(plan.stall_every_s, lambda: self.stall(plan.stall_seconds)))
        if plan.duplicate_every_s:
            jobs.append(self._every(plan.duplicate_every_s, self.duplicate))
        if jobs:
            await asyncio.gather(*jobs)

    @staticmethod
    async def _every(seconds: float, action: Callable[[], int]) -> None:
        while True:
            await asyncio.sleep(seconds)
            action()
