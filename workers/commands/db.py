"""``hyperwatch db``: migrations and partitions."""

from __future__ import annotations

import click
from alembic.util import CommandError
from sqlalchemy.exc import OperationalError

from models import PARTITIONED_TABLES, migrate
from models.db import get_database
from models.partitions import create_ahead, list_partitions
from runtime.clock import SYSTEM_CLOCK, utc_now
from settings import redact_url
from workers.context import UsageError, current_settings


class DatabaseUnreachable(click.ClickException):
    exit_code = 1


def _unreachable(exc: OperationalError) -> click.ClickException:
    settings = current_settings()
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return DatabaseUnreachable(
        f"database {redact_url(settings.database_url)} unreachable: {reason}"
    )


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


@click.group()
def db() -> None:
    """Schema migrations (Alembic) and day partitions."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: head)."""
    settings = current_settings()
    try:
        migrate.upgrade(settings, revision)
    except OperationalError as exc:
        raise _unreachable(exc) from None
    except CommandError as exc:  # an unknown or unreachable revision: nothing was run
        raise UsageError(_first_line(exc)) from None
    click.echo(f"database at revision {migrate.current(settings)}")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION (`base` removes everything)."""
    settings = current_settings()
    try:
        migrate.downgrade(settings, revision)
    except OperationalError as exc:
        raise _unreachable(exc) from None
    except CommandError as exc:
        raise UsageError(_first_line(exc)) from None
    click.echo(f"database at revision {migrate.current(settings) or 'base'}")


@db.command()
def current() -> None:
    """Print the database's revision and the code's head."""
    settings = current_settings()
    try:
        revision = migrate.current(settings)
    except OperationalError as exc:
        raise _unreachable(exc) from None
    head = migrate.head(settings)
    state = "up to date" if revision == head else f"behind head {head}"
    click.echo(f"{revision or 'base'} ({state})")


@db.command()
@click.option(
    "--ahead",
    type=click.IntRange(0, 366),
    default=None,
    help="Days ahead (default PARTITIONS_AHEAD_DAYS).",
)
def partitions(ahead: int | None) -> None:
    """Create day partitions ahead of time (PostgreSQL) and list them."""
    settings = current_settings()
    database = get_database(settings)
    if database.dialect != "postgresql":
        raise UsageError("partitions exist on PostgreSQL only; SQLite tables are not partitioned")
    days = settings.partitions_ahead_days if ahead is None else ahead
    try:
        with database.engine.begin() as conn:
            created = create_ahead(conn, utc_now(SYSTEM_CLOCK).date(), ahead=days)
            counts = {t: len(list_partitions(conn, t)) for t in PARTITIONED_TABLES}
    except OperationalError as exc:
        raise _unreachable(exc) from None
    click.echo(
        f"created {len(created)} partition(s)" + (": " + ", ".join(created) if created else "")
    )
    for table, count in counts.items():
        click.echo(f"  {table}: {count} day partitions")
