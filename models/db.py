"""One engine per process, built from Settings; sessions, ping and disposal.

Fork safety: Celery's prefork pool forks children after the parent may have opened
connections. A pooled connection must never be shared across processes, so every process
re-creates its pool after fork (``os.register_at_fork``) without closing the parent's
sockets (``dispose(close=False)``), as SQLAlchemy's pooling guide prescribes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from math import ceil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from models.secret_box import SecretBox, bind
from settings import Settings


class Database:
    """The process's engine and session factory. Create via :func:`get_database`."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database_url
        self.engine = _create_engine(settings)
        bind(self.engine, SecretBox.from_settings(settings))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any exception."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def ping(self) -> float:
        """Round-trip ``SELECT 1``; returns seconds. Raises the driver's error when down."""
        started = time.perf_counter()
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return time.perf_counter() - started

    def dispose(self) -> None:
        self.engine.dispose()

    def reset_after_fork(self) -> None:
        # Forget the parent's pooled connections without closing their sockets.
        self.engine.dispose(close=False)


def _create_engine(settings: Settings) -> Engine:
    url = make_url(settings.database_url)
    timeout_s = settings.database_connection_timeout / 1000
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": timeout_s, "check_same_thread": False}
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.update(
        pool_size=settings.database_max_connections,
        max_overflow=0,
        pool_timeout=timeout_s,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": max(1, ceil(timeout_s)),
            "application_name": f"hyperwatch:{os.getpid()}",
        },
    )
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the worker write while health and the CLI read; FKs are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# By URL and channel keys: an engine carries its keys (models.secret_box.bind), so settings
# that differ in keys only (tests, key rotation tools) get engines of their own.
_databases: dict[tuple[str, str], Database] = {}


def get_database(settings: Settings) -> Database:
    """The process-wide Database for ``settings.database_url`` (created on first use)."""
    keys = settings.channel_secret_keys
    ident = (settings.database_url, keys.get_secret_value() if keys else "")
    db = _databases.get(ident)
    if db is None:
        db = Database(settings)
        _databases[ident] = db
    return db


def dispose_all() -> None:
    """Close every pool this process opened (shutdown handler)."""
    for db in list(_databases.values()):
        db.dispose()
    _databases.clear()


def _after_fork_in_child() -> None:
    for db in _databases.values():
        db.reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
