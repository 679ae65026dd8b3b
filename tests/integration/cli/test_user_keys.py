"""``hyperwatch users issue-key | keys | revoke-key`` against real PostgreSQL: a key printed
once and stored as a digest, listed by prefix, revoked for good."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner, Result

from domain.access.api_keys import authenticate
from models.db import Database
from workers.cli import cli

pytestmark = pytest.mark.integration


def test_an_operator_issues_lists_and_revokes_a_subscribers_key(
    postgres_url: str, pg_database: Database
) -> None:
    env = {"DATABASE_URL": postgres_url}

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env)

    # Given a subscriber
    assert run("users", "add", "ann@example.com").exit_code == 0

    # When a key is issued
    issued = run("users", "issue-key", "ann@example.com", "--name", "bot")

    # Then it is printed once, works, and the listing shows its prefix only
    assert issued.exit_code == 0, issued.output
    key = issued.output.split("store it now): ")[1].strip()
    key_id = issued.output.split()[1]
    now = dt.datetime.now(dt.UTC)
    with pg_database.session() as session:
        assert authenticate(session, key, now) is not None
    listing = run("users", "keys", "ann@example.com").output
    assert key[3:15] in listing and key not in listing and "bot" in listing

    # And once revoked it authenticates nothing; revoking again says so
    assert run("users", "revoke-key", key_id).output.strip() == f"API key {key_id} revoked"
    assert "already revoked" in run("users", "revoke-key", key_id).output
    with pg_database.session() as session:
        assert authenticate(session, key, now) is None
    missing = run("users", "revoke-key", "99999999")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_name = run("users", "issue-key", "ann@example.com", "--name", "a\nb")
    assert bad_name.exit_code == 2 and "printable" in bad_name.output
