"""Prefork safety of the database layer (models/db.py): one pool per process after fork."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from models.db import Database

pytestmark = pytest.mark.integration


def backend_pid(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_forked_child_opens_its_own_connection_and_leaves_the_parents_intact(
    pg_database: Database,
) -> None:
    # Given a parent process with one pooled (checked-in) PostgreSQL connection — only one:
    # the pool hands its connections out in turn, and earlier tests may have left several
    pg_database.dispose()
    parent_backend = backend_pid(pg_database)

    # When it forks (as Celery's prefork pool does) and the child uses the same Database
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.write(write_end, str(backend_pid(pg_database)).encode())
            pg_database.dispose()  # what the shutdown handler does as the child exits
        finally:
            os._exit(0)
    os.close(write_end)
    child_backend = int(os.read(read_end, 32))
    os.close(read_end)
    _, status = os.waitpid(child, 0)

    # Then the child got a connection of its own, and the parent's pooled connection is the
    # same live session as before (the child neither used nor closed the parent's socket)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_backend != parent_backend
    assert backend_pid(pg_database) == parent_backend
