"""Issuing, checking and revoking subscribers' API keys.

A key reads ``hw_<prefix>_<secret>``: ``prefix`` is 12 random hex digits, public (it names
the key in listings and finds its row), ``secret`` 32 random bytes in URL-safe base64. Only
the SHA-256 digest of the whole key is stored. A slow password hash buys nothing here: the
key carries 256 bits of randomness, so no dictionary or brute force reaches it, and SHA-256
keeps every request's check in microseconds. Digests are compared in constant time.

A key authenticates while it is not revoked and its user is active; the check reads the
database on every request, so a revocation holds from its commit on, in every API process.
``last_used_at`` is written at most once per :data:`TOUCH_EVERY` per key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy.orm import Session

from models.api_key import MAX_NAME_CHARS, PREFIX_CHARS, ApiKey
from models.repositories import ApiKeyRepository
from models.user import User

SCHEME: Final = "hw_"
TOUCH_EVERY: Final = dt.timedelta(minutes=1)
# Compared against when no row has the presented prefix, so an unknown prefix costs the
# same digest comparison as a known one.
_NO_DIGEST: Final = "0" * 64


class KeyRefused(ValueError):
    """A key cannot be issued as asked; ``str()`` says why."""


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``plaintext`` exists only here, to be shown once."""

    row: ApiKey
    plaintext: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> tuple[str, str]:
    """(prefix, plaintext key)."""
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    return prefix, f"{SCHEME}{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(key: str) -> str | None:
    """The public prefix of a well-formed key, else None. Pure."""
    if not key.startswith(SCHEME) or len(key) < len(SCHEME) + PREFIX_CHARS + 2:
        return None
    prefix = key[len(SCHEME) : len(SCHEME) + PREFIX_CHARS]
    if key[len(SCHEME) + PREFIX_CHARS] != "_":
        return None
    if not all(c in "0123456789abcdef" for c in prefix):
        return None
    return prefix


def check_name(name: str) -> str:
    """A key's label: printable text up to the column's length."""
    if len(name) > MAX_NAME_CHARS:
        raise KeyRefused(f"name is at most {MAX_NAME_CHARS} characters, got {len(name)}")
    if not name.isprintable():
        raise KeyRefused("name must be printable text (no control characters)")
    return name


def issue_key(session: Session, user: User, name: str = "") -> IssuedKey:
    """A new key for ``user``, stored as its digest in the caller's transaction."""
    label = check_name(name)
    prefix, plaintext = new_key()
    row = ApiKeyRepository(session).issue(user.id, prefix, digest(plaintext), label)
    return IssuedKey(row, plaintext)


def authenticate(session: Session, presented: str, now: dt.datetime) -> tuple[ApiKey, User] | None:
    """The key and its user when ``presented`` is a live key of an active user, else None
    (which of the reasons is not told: a caller learns nothing about other keys)."""
    prefix = prefix_of(presented)
    row = ApiKeyRepository(session).by_prefix(prefix) if prefix is not None else None
    expected = row.digest if row is not None else _NO_DIGEST
    matches = hmac.compare_digest(expected, digest(presented))
    if row is None or not matches or row.revoked:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    ApiKeyRepository(session).touch(row.id, now, older_than=now - TOUCH_EVERY)
    return row, user
