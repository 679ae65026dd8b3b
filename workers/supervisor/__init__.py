"""``hyperwatch up``: supervise ingester, worker, beat, Flower (and the simulator) locally.

``plan`` decides what runs (pure), ``child`` runs one process with prefixed output,
``restart`` decides when to restart, ``supervisor`` is the loop and the shutdown order,
``preflight`` checks Redis before anything starts, ``readiness`` what a child waits for
(Flower: the worker's ping), ``summary`` the block printed once all run, ``wording`` how
Celery's shutdown prints read, ``command`` is the click command.
"""

from __future__ import annotations

from workers.supervisor.command import up

__all__ = ["up"]
