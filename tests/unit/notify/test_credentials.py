"""Channel credentials are held to their kind's shape on the way in, and the Telegram
request path is built so that no token can change it."""

from __future__ import annotations

import httpx
import pytest

from domain.notify.credentials import (
    CredentialRefused,
    check_channel,
    check_telegram_chat,
    check_telegram_token,
    check_url,
    check_webhook_secret,
    telegram_path,
)
from models.notification_channel import MAX_SECRET_CHARS, MAX_TARGET_CHARS

TOKEN = "7345123987:AAH-k3y_xYz0987654321abcdefGHIJKL"
PUBLIC = "93.184.215.14"


def public(host: str, port: int) -> list[str]:
    """A resolver that answers every name with one public address (no network)."""
    return [PUBLIC]


def unresolvable(host: str, port: int) -> list[str]:
    raise OSError(-2, "Name or service not known")


# --- Telegram ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [TOKEN, "1:" + "a" * 20, "123456789:" + "Z9_-" * 32, "12345678901234567890:" + "x" * 128],
)
def test_a_bot_token_of_the_right_shape_is_accepted_and_kept_exactly(token: str) -> None:
    assert check_telegram_token(token) == token
    assert telegram_path(token) == f"/bot{token}/sendMessage"


@pytest.mark.parametrize(
    "token",
    [
        "123:AAAAAAAAAAAAAAAAAAAA/../../setWebhook",  # another method of the API
        "123:AAAAAAAAAAAAAAAAAAAA/..",
        "../../admin:AAAAAAAAAAAAAAAAAAAA",
        "123:AAAAAAAAAAAAAAAAAAAA?url=https://evil.example",
        "123:AAAAAAAAAAAAAAAAAAAA#",
        "123:AAAAAAAAAAAAAAAAAAAA%2F..%2F",
        "123:AAAAAAAAAAAAAAAAAAAA\\..",
        "123:AAAAAAAAAA AAAAAAAAAA",
        "123:AAAAAAAAAAAAAAAAAAAA\n",
        "123:AAAAAAAAAAAAAAAAAAA.",
        "١٢٣:AAAAAAAAAAAAAAAAAAAA",  # Arabic-Indic digits are digits to str.isdigit
        "123:AAAAAAAAAAAAAAAAAAAÄ",
        "123:short",
        "123AAAAAAAAAAAAAAAAAAAAA",
        ":AAAAAAAAAAAAAAAAAAAA",
        "123:" + "A" * 129,
    ],
)
def test_a_bot_token_that_could_steer_the_request_is_refused(token: str) -> None:
    with pytest.raises(CredentialRefused, match="telegram bot token must look like") as info:
        check_telegram_token(token)
    assert token not in str(info.value)
    with pytest.raises(ValueError, match="malformed"):
        telegram_path(token)


def test_the_telegram_url_keeps_the_api_host_and_one_path_segment_for_the_token() -> None:
    # Given the API base and an accepted token; When the request URL is built as the
    # channel builds it
    url = httpx.URL("https://api.telegram.org" + telegram_path(TOKEN))

    # Then it is that host, and the path is exactly /bot<token>/sendMessage
    assert url.host == "api.telegram.org"
    assert url.path.split("/") == ["", f"bot{TOKEN}", "sendMessage"]
    assert url.query == b"" and url.fragment == ""


def test_a_missing_or_overlong_token_names_the_field() -> None:
    with pytest.raises(CredentialRefused, match="needs a secret"):
        check_telegram_token(None)
    with pytest.raises(CredentialRefused, match=f"at most {MAX_SECRET_CHARS} characters"):
        check_telegram_token("1:" + "a" * MAX_SECRET_CHARS)


@pytest.mark.parametrize("chat", ["-1001234567", "42", "@hyperwatch_alerts", "@abcde"])
def test_a_chat_id_or_public_channel_name_is_accepted(chat: str) -> None:
    assert check_telegram_chat(chat) == chat


@pytest.mark.parametrize(
    "chat",
    [None, "", "chat", "@", "@abcd", "@1abcde", "@a/../b", "@" + "a" * 33, "--1", "4 2",
     "²", "١٢٣", "12345678901234567890123"],
)  # fmt: skip
def test_anything_else_is_not_a_chat_id(chat: str | None) -> None:
    with pytest.raises(CredentialRefused, match="needs the chat id"):
        check_telegram_chat(chat)


# --- webhook secrets -----------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["0123456789abcdef", "whsec-Secr3t-0c9d8e7f", "!" * 256])
def test_a_signing_secret_of_printable_ascii_is_accepted(secret: str) -> None:
    assert check_webhook_secret(secret) == secret


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (None, "needs a secret"),
        ("", "needs a secret"),
        ("s3cret", "16 to 256 printable ASCII"),
        ("0123456789abcde ", "16 to 256 printable ASCII"),
        ("0123456789abcdef\t", "16 to 256 printable ASCII"),
        ("0123456789abcdefé", "16 to 256 printable ASCII"),
        ("0123456789abcdef\x00", "16 to 256 printable ASCII"),
        ("s" * 257, "at most 256 characters"),
    ],
)
def test_a_short_or_unprintable_signing_secret_is_refused(
    secret: str | None, fragment: str
) -> None:
    with pytest.raises(CredentialRefused, match=fragment) as info:
        check_webhook_secret(secret)
    if secret:
        assert secret not in str(info.value)


# --- URLs ----------------------------------------------------------------------------------

SLACK = "https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/Secr3tSlackPath9z8y7x"


@pytest.mark.parametrize(
    "url",
    [SLACK, "https://hooks.example.com/hw?token=abc", "https://bücher.example/hook",
     "http://" + PUBLIC + ":8080/x"],
)  # fmt: skip
def test_a_public_url_is_accepted_as_given(url: str) -> None:
    assert check_url("webhook", url, resolver=public) == url


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("https://hooks.slack.com/services/\u202eT0/B0/Secr3t", "one line of printable"),
        ("https://hooks.slack.com/services/T0/B0/Secr3t\n", "one line of printable"),
        ("https://hooks.slack.com/ services/T0/B0/Secr3t", "one line of printable"),
        ("https://hooks.slack.com/services/T0/B0/Secr3t\u200b", "one line of printable"),
        ("https://[hooks.slack.com/services/T0/B0/Secr3t", "malformed"),
        ("https://user:Secr3t@hooks.slack.com/x", "credentials"),
        ("ftp://hooks.slack.com/services/T0/B0/Secr3t", "only http and https"),
        ("http://10.1.2.3/services/T0/B0/Secr3t", "private address 10.1.2.3"),
        ("https://hooks.slack.com:99999/services/T0/B0/Secr3t", "invalid port"),
    ],
)
def test_a_refused_slack_url_is_never_echoed(url: str, fragment: str) -> None:
    with pytest.raises(CredentialRefused, match=fragment) as info:
        check_url("slack", url, resolver=public)
    message = str(info.value)
    assert message.startswith("the slack URL cannot be used: ")
    assert "Secr3t" not in message and "services" not in message


def test_an_unresolvable_discord_host_is_named_without_the_path() -> None:
    url = "https://nowhere.invalid/api/webhooks/1/Secr3t-token"
    with pytest.raises(
        CredentialRefused, match=r"its host nowhere\.invalid does not resolve"
    ) as info:
        check_url("discord", url, resolver=unresolvable)
    assert "Secr3t" not in str(info.value)


def test_an_overlong_or_missing_url_names_the_field() -> None:
    with pytest.raises(CredentialRefused, match=f"at most {MAX_TARGET_CHARS} characters"):
        check_url("webhook", "https://h.example/" + "a" * MAX_TARGET_CHARS, resolver=public)
    with pytest.raises(CredentialRefused, match="needs its URL"):
        check_url("discord", None, resolver=public)


# --- per kind ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "target", "secret", "fragment"),
    [
        ("slack", SLACK, "0123456789abcdef", "a slack channel takes no secret"),
        ("discord", SLACK, "x", "a discord channel takes no secret"),
        ("redis", "hw-anything", None, "a redis channel takes no target"),
        ("redis", None, "0123456789abcdef", "a redis channel takes no secret"),
        ("pager", "x", None, "no channel kind 'pager'"),
        ("telegram", "chat", TOKEN, "chat id"),  # the target is checked first
        ("telegram", "42", None, "needs a secret"),
        ("webhook", SLACK, "short", "16 to 256"),
    ],
)
def test_each_kind_takes_only_what_it_uses(
    kind: str, target: str | None, secret: str | None, fragment: str
) -> None:
    with pytest.raises(CredentialRefused, match=fragment):
        check_channel(kind, target, secret, resolver=public)


@pytest.mark.parametrize(
    ("kind", "target", "secret"),
    [
        ("webhook", SLACK, "0123456789abcdef"),
        ("slack", SLACK, None),
        ("discord", SLACK, ""),
        ("telegram", "-100123", TOKEN),
        ("redis", None, None),
        ("redis", "", ""),
    ],
)
def test_each_kind_accepts_its_own_shape(kind: str, target: str | None, secret: str | None) -> None:
    check_channel(kind, target, secret, resolver=public)
