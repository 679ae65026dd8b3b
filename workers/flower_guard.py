"""When Flower may start: the one rule ``flowerconfig.py`` (inside Flower) and ``hyperwatch
up`` (before starting anything) both apply.

Flower's UI and API control the workers — shut them down, revoke tasks, resize pools — so:

- **Beyond loopback, credentials.** Listening on anything but a loopback address
  (``127.0.0.0/8``, ``::1``, ``localhost``) or a Unix socket needs ``FLOWER_BASIC_AUTH``
  (or Flower's own OAuth: ``--auth`` with ``--auth_provider``). The one way around it is
  ``FLOWER_ALLOW_UNAUTHENTICATED=true``, which is loud: Flower prints a warning at every
  start and ``hyperwatch up`` says so in its summary.
- **No trivially weak password**, wherever Flower listens: each ``user:password`` pair
  needs a password of at least 12 characters, with at least 5 different characters, that
  is not the user name and not a well-known default (``password``, ``changeme``,
  ``admin`` … with digits or punctuation around it). Messages name the user, never the
  password.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MIN_PASSWORD_CHARS: Final = 12
MIN_DISTINCT_CHARS: Final = 5
# Defaults and first guesses: compared with the password's letters, lower-cased, so
# "Password123!" and "CHANGE-ME-2024" count as what they are.
_DEFAULTS: Final = frozenset(
    {
        "password", "passwort", "changeme", "admin", "administrator", "flower", "celery",
        "secret", "letmein", "qwerty", "qwertyuiop", "welcome", "default", "root", "guest",
        "test", "hyperwatch", "abc", "abcdef", "iloveyou", "monkey", "dragon",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    """``refusal``: why Flower must not start (one line); ``warning``: started, but say it."""

    refusal: str | None = None
    warning: str | None = None


def is_loopback(address: str) -> bool:
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False  # "" (every interface) or a host name: not provably local


def weak_credential(pairs: Sequence[str]) -> str | None:
    """Why one of the ``user:password`` pairs is not acceptable, or None."""
    for pair in pairs:
        user, sep, password = pair.partition(":")
        if not sep or not user or not password:
            return "FLOWER_BASIC_AUTH must be user:password pairs separated by commas"
        why = _weakness(user, password)
        if why is not None:
            return (
                f"FLOWER_BASIC_AUTH: the password of user {user!r} is trivially weak ({why}); "
                "make one with `openssl rand -hex 16`"
            )
    return None


def _weakness(user: str, password: str) -> str | None:
    letters = re.sub(r"[^a-z]", "", password.lower())
    if len(password) < MIN_PASSWORD_CHARS:
        return f"fewer than {MIN_PASSWORD_CHARS} characters"
    if len(set(password)) < MIN_DISTINCT_CHARS:
        return f"fewer than {MIN_DISTINCT_CHARS} different characters"
    if password.lower() == user.lower() or (
        letters and letters == re.sub(r"[^a-z]", "", user.lower())
    ):
        return "it is the user name"
    if any(letters == word * n for word in _DEFAULTS for n in (1, 2, 3)):
        return "a well-known default"
    return None


def check(
    *,
    address: str,
    port: int,
    unix_socket: bool,
    basic_auth: Sequence[str],
    oauth: bool,
    allow_unauthenticated: bool,
) -> Verdict:
    """Whether Flower may serve on ``address:port`` with these credentials (module rule)."""
    if basic_auth:
        weak = weak_credential(basic_auth)
        if weak is not None:
            return Verdict(refusal=weak)
        return Verdict()
    if oauth or unix_socket or is_loopback(address):
        return Verdict()
    where = f"{address or 'every interface'}:{port}"
    if allow_unauthenticated:
        return Verdict(
            warning=(
                f"serving on {where} WITHOUT AUTHENTICATION because FLOWER_ALLOW_UNAUTHENTICATED "
                "is set: anyone who can reach it can shut down workers and revoke tasks"
            )
        )
    return Verdict(
        refusal=(
            f"refusing to serve on {where} without FLOWER_BASIC_AUTH (set user:password, or "
            "FLOWER_ADDRESS=127.0.0.1 to stay on this machine)"
        )
    )
