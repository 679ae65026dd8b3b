"""How a bulk loader starts its parsing processes (``archive import --jobs``,
``replay --into db --jobs``).

Fork when this process runs one thread: the child starts at once with the parent's modules
imported (spawning re-imports them: ~0.6 s of CPU per process, a twentieth of a
two-million-trade import, during which the database waits for its first batch). Spawn
otherwise: a lock another thread holds at the fork (a logging handler's, a client's) would
stay held forever in the child.

What the children inherit is safe to inherit: database pools are replaced in a forked
child (``models/db.py``, ``os.register_at_fork``) and the parsers open connections of their
own (``WalletIds.connect``); a multiprocessing child leaves with ``os._exit``, so nothing
the parent opened is closed or flushed by it.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.context import ForkContext, SpawnContext


def parsing_context() -> ForkContext | SpawnContext:
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")
