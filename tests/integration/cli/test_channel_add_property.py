"""Property: whatever a subscriber types into ``hyperwatch channels add`` — for every
channel kind, as its target and its secret (and the channel's name): control characters, bidi and zero-width
characters, lone surrogates, NUL, overlong strings around the column limits, near-valid
URLs and tokens — the command either accepts it and stores it exactly as given, or refuses
it with one line and exit 2 having written nothing. It never raises, and a refusal never
repeats a secret or a Slack/Discord URL.

Runs against the real PostgreSQL (which, unlike SQLite, refuses NUL and unpaired
surrogates: the checks must catch them first). Host names resolve through a fixed table
(``hermetic_dns``) instead of the network: the property is about input handling, and a
random name must neither leave the machine nor depend on what the internet answers.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeGuard

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from models.db import Database
from models.notification_channel import CHANNEL_KINDS, NotificationChannel
from models.repositories import UserRepository
from runtime import keys
from workers.cli import cli

pytestmark = pytest.mark.integration

PUBLIC = "93.184.215.14"  # what every name resolves to, but those under .invalid


@pytest.fixture()
def hermetic_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name)
            return real(host, port, *args, **kwargs)  # numeric: Redis, PostgreSQL, literals
        except ValueError:
            pass
        if name == "localhost":
            return real(host, port, *args, **kwargs)
        if name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (PUBLIC, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture()
def run(
    postgres_url: str, pg_database: Database, redis_url: str, hermetic_dns: None
) -> Iterator[Callable[..., Result]]:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "WEBHOOK_ALLOWLIST": "127.0.0.0/8"}

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env)

    assert invoke("users", "add", "ann@example.com").exit_code == 0
    yield invoke


# --- what a subscriber might type ---------------------------------------------------------

ANY_CHARACTER = st.characters(codec=None, exclude_categories=())  # surrogates and NUL too
# Letters, marks, digits, punctuation, symbols of any script: what passes as printable.
PRINTABLE = st.characters(codec=None, categories=("L", "M", "N", "P", "S"))
awkward = st.one_of(
    st.text(ANY_CHARACTER, max_size=40),
    st.text(st.characters(max_codepoint=0x7F), max_size=300),  # ASCII, control characters too
    st.builds(lambda c, n: c * n, st.sampled_from("a/é\x00"), st.integers(240, 270)),
    st.sampled_from(
        ["", " ", "\x00", "\n", "\r\n", "\u202e", "\u200b", "\ufeff", "\udcff", "%00", "../",
         "@", ":", "-", "--secret", "😀", "ǅ", "٣", "²"]
    ),
)  # fmt: skip
# Inside a URL or after a token's colon: mostly what could pass, sometimes not.
fragment = st.one_of(
    st.text(PRINTABLE, max_size=60),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60),
    awkward,
)
good_host = st.sampled_from(
    ["127.0.0.1:9", "hooks.slack.com", "discord.com", "bücher.example", "h.example:8443",
     "[::1]:9", "127.1", "HOOKS.Example.COM."]
)  # fmt: skip
any_host = st.one_of(
    good_host,
    st.sampled_from(["10.1.2.3", "[fd00::1]", "169.254.169.254", "nowhere.invalid",
                     "2130706433", "user:pw@h.example", "h.example:99999", "[::1", "h..example"]),
    st.from_regex(r"[a-z0-9-]{1,20}(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True),
    st.text(ANY_CHARACTER, min_size=1, max_size=20),
)  # fmt: skip
url = st.one_of(
    st.builds("{}://{}/{}".format, st.sampled_from(["http", "https"]), good_host, fragment),
    st.builds("{}://{}/{}".format, st.sampled_from(["http", "https", "HTTPS", "ftp", ""]),
              any_host, fragment),
    st.builds("http://127.0.0.1:9/{}".format, st.builds(lambda n: "a" * n, st.integers(2010, 2040))),
    awkward,
)  # fmt: skip
chat = st.one_of(
    st.from_regex(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,22}|@[A-Za-z0-9_]{0,34}", fullmatch=True),
    st.builds("@{}".format, fragment),
    awkward,
)
token = st.one_of(
    st.from_regex(r"[0-9]{1,20}:[A-Za-z0-9_\-]{20,128}", fullmatch=True),
    st.from_regex(r"[0-9]{1,22}:[A-Za-z0-9_\-]{15,240}", fullmatch=True),
    st.builds("{}:{}".format, st.integers(0, 10**12), fragment),
    awkward,
    st.none(),
)
signing_secret = st.one_of(
    st.none(),
    st.from_regex(r"[!-~]{10,300}", fullmatch=True),  # printable ASCII, around both bounds
    fragment,
    awkward,
)
no_secret = st.one_of(st.none(), st.none(), st.just(""), awkward)
no_target = st.one_of(st.none(), st.just(""), awkward)
# The label, not a credential: from argv it may hold an undecodable byte (a lone surrogate).
names = st.one_of(st.none(), st.none(), st.text(PRINTABLE, max_size=110), awkward)
FIELDS = {
    "webhook": (url, signing_secret),
    "slack": (url, no_secret),
    "discord": (url, no_secret),
    "telegram": (chat, token),
    "redis": (no_target, no_secret),
}


def rows(db: Database) -> list[NotificationChannel]:
    with db.session() as s:
        return list(s.scalars(select(NotificationChannel).order_by(NotificationChannel.id)))


def count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(NotificationChannel)) or 0)


def user_id(db: Database) -> int:
    with db.session() as s:
        user = UserRepository(s).by_email("ann@example.com")
        assert user is not None
        return user.id


def shown_apart(value: str | None, target: str | None) -> TypeGuard[str]:
    """Whether ``value`` is long enough to look for in the output and not also part of the
    target (a webhook's URL and a refused URL's host may be shown; a secret never)."""
    return value is not None and len(value) >= 12 and value not in (target or "")


@pytest.mark.parametrize("kind", CHANNEL_KINDS)
def test_any_channel_input_is_stored_exactly_or_refused_cleanly(
    run: Callable[..., Result], pg_database: Database, kind: str
) -> None:
    owner = user_id(pg_database)

    @settings(
        max_examples=150,
        deadline=None,
        derandomize=True,  # the same examples on every run: a failure reproduces as it is
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(target=FIELDS[kind][0], given_secret=FIELDS[kind][1], name=names)
    def check(target: str | None, given_secret: str | None, name: str | None) -> None:
        args = ["channels", "add", "--user", "ann@example.com", "--kind", kind]
        args += [] if name is None else [f"--name={name}"]
        # "--opt=value": a value that starts with "-" is still the value
        args += [] if target is None else [f"--target={target}"]
        args += [] if given_secret is None else [f"--secret={given_secret}"]
        before = count(pg_database)

        result = run(*args)

        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
        if result.exit_code == 2:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("hyperwatch: "), result.stderr
            assert count(pg_database) == before, "a refusal wrote a row"
            if shown_apart(given_secret, target):
                assert given_secret not in result.output, "a refusal repeated the secret"
            if kind in ("slack", "discord") and target and len(target) >= 12:
                assert target not in result.output, "a refusal repeated the URL"
            return
        assert result.exit_code == 0, (result.exit_code, result.output)
        assert count(pg_database) == before + 1
        stored = rows(pg_database)[-1]
        assert stored.kind == kind and stored.name == (name or "")
        if kind == "redis":
            assert not target
            assert stored.target == keys.NOTIFY_USER_CHANNEL.name(user_id=owner)
        else:
            assert stored.target == target  # exactly as given, byte for byte
        if kind == "webhook" and not given_secret:
            generated = result.output.splitlines()[1].rsplit(" ", 1)[1]
            assert stored.secret == generated
        else:
            assert stored.secret == given_secret
        if shown_apart(given_secret, target):
            assert given_secret not in result.output  # shown once only when generated

    check()
