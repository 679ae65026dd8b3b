"""Lines children print that read as alarming under ``hyperwatch up``, said plainly.

The Celery worker announces its shutdown with ``print``-style writes straight to stdout
(``celery.apps.worker.safe_say``), not through logging, so a logging filter cannot reach
them; the supervisor, which copies every child's output, rewords them instead. Only the
wording changes, never what the worker does: ``REMAP_SIGTERM=SIGQUIT`` still turns the
SIGTERM the supervisor sends into Celery's soft shutdown (celeryconfig.py,
docs/OPERATIONS.md), whose first announcement is "Cold shutdown". Under ``up`` the worker
only ever gets that one SIGTERM (a second stop signal makes the supervisor SIGKILL it), so
these lines always describe the soft shutdown. Deployments (systemd, Kubernetes) see
Celery's own words.

Whitespace-only lines (``safe_say`` writes a blank line before each message) are dropped
for every child.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# (pattern, replacement): a match is replaced (``re.sub``), or the line dropped when the
# replacement is None.
Reword = tuple[re.Pattern[bytes], bytes | None]

CELERY_WORKER: tuple[Reword, ...] = (
    # The SIGQUIT handler, i.e. our remapped SIGTERM: the soft shutdown starts.
    (
        re.compile(rb"^worker: Cold shutdown \(MainProcess\)$"),
        b"worker: soft shutdown (MainProcess): no new tasks; running ones may finish",
    ),
    # Printed with it; under `up` a second Ctrl-C reaches the supervisor, not the worker.
    (re.compile(rb"^worker: Hitting Ctrl\+C again will terminate all running tasks!$"), None),
    # Logged when a task is still running: the soft shutdown's wait.
    (
        re.compile(rb"Initiating Soft Shutdown, terminating in ([0-9.]+) seconds"),
        rb"soft shutdown: running tasks get \1 s to finish, then go back to the queue",
    ),
)


def reword(line: bytes, rewords: Iterable[Reword]) -> bytes | None:
    """``line`` (without its newline) as the operator should read it; None to drop it."""
    if not line.strip():
        return None
    for pattern, replacement in rewords:
        if replacement is None:
            if pattern.search(line):
                return None
        else:
            line = pattern.sub(replacement, line)
    return line
