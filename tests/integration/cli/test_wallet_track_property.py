"""Property: whatever a subscriber types into ``hyperwatch wallets track`` — as the address
or the label, on the command line or in a ``--file`` — the command either tracks exactly
what it was given (the address lowercased, the label as typed) or refuses with exit 2,
an error line and nothing written. It never raises.

Runs against the real PostgreSQL, which refuses NUL and unpaired surrogates and holds a
label to its column's 100 characters: the command's own checks must come first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from models.db import Database
from models.tracked_wallet import TrackedWallet
from workers.cli import cli

pytestmark = pytest.mark.integration

HEX = "0123456789abcdef"
ANY_CHARACTER = st.characters(codec=None, exclude_categories=())  # surrogates and NUL too
hex_address = st.text(st.sampled_from(HEX + "ABCDEF"), min_size=40, max_size=40).map(
    lambda digits: "0x" + digits
)
near_address = st.one_of(
    hex_address,
    # one digit replaced by something that looks like one: fullwidth, Arabic-Indic, a
    # combining mark, a control character, NUL, a space
    st.tuples(hex_address, st.integers(2, 41), st.sampled_from("１٣\u0301\x07\x00 gG\u200b")).map(
        lambda t: t[0][: t[1]] + t[2] + t[0][t[1] + 1 :]
    ),
    st.text(st.sampled_from(HEX), min_size=0, max_size=80).map(lambda d: "0x" + d),
    st.text(ANY_CHARACTER, max_size=60),
)
label = st.one_of(
    st.text(ANY_CHARACTER, max_size=20),
    st.text(st.characters(codec=None), min_size=95, max_size=110),
    st.just(""),
)


@pytest.fixture()
def run(
    postgres_url: str, pg_database: Database, redis_url: str
) -> Iterator[Callable[..., Result]]:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, input=stdin)

    assert invoke("users", "add", "ann@example.com", "--tier", "pro").exit_code == 0
    yield invoke


def _stored(database: Database) -> list[tuple[str, str]]:
    with database.session() as session:
        return [(w.address, w.label) for w in session.scalars(select(TrackedWallet))]


def _delete_all(database: Database) -> None:
    with database.session() as session:
        for wallet in session.scalars(select(TrackedWallet)):
            session.delete(wallet)
        session.commit()


def _valid(address: str) -> bool:
    return (
        len(address) == 42
        and address[:2].lower() == "0x"
        and all(c in HEX for c in address[2:].lower())
    )


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(address=near_address, text=label)
def test_track_one_address_stores_it_exactly_or_refuses_it_whole(
    run: Callable[..., Result], pg_database: Database, address: str, text: str
) -> None:
    _delete_all(pg_database)
    result = run("wallets", "track", "--user", "ann@example.com", address, "--label", text)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 0:
        assert _valid(address), address
        assert _stored(pg_database) == [(address.lower(), text)]
    else:
        assert result.exit_code == 2, result.output
        assert _stored(pg_database) == []


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(near_address, min_size=1, max_size=6))
def test_track_a_file_tracks_every_line_or_none(
    run: Callable[..., Result], pg_database: Database, tmp_path: Path, lines: list[str]
) -> None:
    _delete_all(pg_database)
    # Stdin is bytes, as from a real file: a lone surrogate arrives as bytes that are not UTF-8.
    stdin = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    result = run("wallets", "track", "--user", "ann@example.com", "--file", "-", stdin=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    stored = {address for address, _ in _stored(pg_database)}
    if result.exit_code == 0:
        expected = {line.split("#", 1)[0].strip().lower() for line in lines}
        assert stored == expected - {""}
    else:
        assert result.exit_code == 2, result.output
        assert stored == set()
