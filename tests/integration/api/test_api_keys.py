"""API keys in the database, on SQLite and PostgreSQL: issued once as a digest, found by
prefix, last use written at most once a minute, revocation idempotent and final."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.access.api_keys import authenticate, issue_key
from models.db import Database
from models.repositories import ApiKeyRepository, UserRepository

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


def test_a_key_is_stored_as_its_digest_and_authenticates_until_revoked(database: Database) -> None:
    # Given a user with an issued key
    with database.session() as session:
        user = UserRepository(session).create("ann@example.com", "pro")
        issued = issue_key(session, user, "bot")
        key, key_id = issued.plaintext, issued.row.id
    with database.session() as session:
        row = ApiKeyRepository(session).get(key_id)
        assert row is not None and key not in (row.digest, row.prefix, row.name)

        # When it is presented, then it authenticates and its last use is recorded
        found = authenticate(session, key, T0)
        assert found is not None and found[1].email == "ann@example.com"
        assert authenticate(session, key + "x", T0) is None
        assert authenticate(session, "hw_" + row.prefix + "_guess", T0) is None

    with database.session() as session:
        repository = ApiKeyRepository(session)
        # A use within the minute writes nothing; a later one does
        assert not repository.touch(
            key_id, T0 + dt.timedelta(seconds=30), T0 - dt.timedelta(seconds=30)
        )
        assert repository.touch(key_id, T0 + dt.timedelta(minutes=2), T0 + dt.timedelta(minutes=1))
        # Revoked once: later revocations keep the first time, and the key is dead
        assert repository.revoke(key_id, T0) is True
        assert repository.revoke(key_id, T0 + dt.timedelta(hours=1)) is False
    with database.session() as session:
        row = ApiKeyRepository(session).get(key_id)
        assert row is not None and row.revoked_at == T0
        assert authenticate(session, key, T0) is None
        assert [k.id for k in ApiKeyRepository(session).of_user(row.user_id)] == [key_id]
