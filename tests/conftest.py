"""Fixtures shared by every test layer. Services are real; see tests/support/services.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from models.db import Database, get_database
from settings import Settings, load_settings
from tests.support.services import PostgresDatabase, RedisServer

# Tables emptied between tests (children before parents).
_TABLES = (
    "notifications", "alerts", "tracked_wallets", "notification_channels", "api_keys", "users",
    "trade_snapshots", "trade_bars", "asset_context_snapshots", "position_snapshots",
    "user_fills", "sessions", "health_metrics", "dead_letters", "gaps", "archive_imports", "rest_bars", "funding_rates",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Tests never read the developer's .env or write into the checkout's var/ (DATA_DIR's
    # default is anchored to the checkout, not to the working directory; processes a test
    # starts inherit this unless it builds their environment itself).
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "var"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    database = PostgresDatabase()
    try:
        yield database.url
    finally:
        database.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that read or disturb every key."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture()
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()  # our private server, never the shared one
    client.close()
    yield redis_server.url


def _migrated(url: str) -> Database:
    from models import migrate

    settings = load_settings(database_url=url)
    migrate.upgrade(settings)
    return get_database(settings)


@pytest.fixture(scope="session")
def _pg_database(postgres_url: str) -> Database:
    return _migrated(postgres_url)


@pytest.fixture(scope="session")
def _sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Database:
    path = tmp_path_factory.mktemp("sqlite") / "hyperwatch.db"
    return _migrated(f"sqlite:///{path}")


def _empty(database: Database) -> None:
    with database.engine.begin() as conn:
        for table in _TABLES:
            conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    """A migrated, empty database; the test runs once on SQLite and once on PostgreSQL."""
    db: Database = request.getfixturevalue(
        f"_{'pg' if request.param == 'postgresql' else 'sqlite'}_database"
    )
    _empty(db)
    return db


@pytest.fixture()
def pg_database(_pg_database: Database) -> Database:
    """A migrated, empty PostgreSQL database."""
    _empty(_pg_database)
    return _pg_database


@pytest.fixture()
def settings_for(tmp_path: Path) -> object:
    """Build Settings with overrides, isolated from the environment's .env."""

    def build(**overrides: object) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "var")
        return load_settings(**overrides)

    return build
