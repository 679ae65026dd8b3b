"""Migrations: empty database → head → base → head, on PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text

from models import PARTITIONED_TABLES, Base, migrate
from models.db import get_database
from settings import load_settings
from tests.support.services import PostgresDatabase


def _roundtrip(url: str) -> None:
    settings = load_settings(database_url=url)
    engine = get_database(settings).engine
    assert migrate.current(settings) is None
    migrate.upgrade(settings)
    assert migrate.current(settings) == migrate.head(settings)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(settings, "base")
    assert migrate.current(settings) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(settings)
    assert migrate.current(settings) == migrate.head(settings)


def test_given_empty_sqlite_when_migrating_up_down_up_then_schema_follows(tmp_path: Path) -> None:
    _roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


def test_given_empty_postgres_when_migrating_up_down_up_then_schema_follows() -> None:
    database = PostgresDatabase()
    try:
        _roundtrip(database.url)
        settings = load_settings(database_url=database.url)
        with get_database(settings).engine.connect() as conn:
            for table in PARTITIONED_TABLES:
                kind = conn.execute(
                    text("SELECT relkind FROM pg_class WHERE relname = :t"), {"t": table}
                ).scalar()
                assert kind == "p", f"{table} is not partitioned"
        get_database(settings).dispose()
    finally:
        database.close()


def test_given_migrated_database_when_compared_with_models_then_no_drift(database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )

    # Day partitions are created at run time and are not part of the declared model.
    def runtime_partition(entry: tuple) -> bool:
        obj = entry[1]
        table = getattr(obj, "table", obj)
        return entry[0] in ("remove_table", "remove_index") and "_p2" in str(
            getattr(table, "name", "")
        )

    diff = [d for d in diff if not runtime_partition(d)]
    assert diff == [], diff
