"""Alembic environment: runs migrations on the engine built from hyperwatch Settings."""

from __future__ import annotations

from alembic import context

import models
from models.db import get_database
from settings import load_settings

config = context.config
target_metadata = models.Base.metadata


def run_migrations_online() -> None:
    settings = config.attributes.get("settings") or load_settings()
    engine = get_database(settings).engine
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode recreates tables instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
