"""What a notification channel accepts as its target and secret, checked on the way in.

A channel's credentials come from a subscriber and end up in a request: a Telegram bot
token in the request *path* (``/bot<token>/sendMessage`` on ``TELEGRAM_API_BASE``, which is
not behind the egress guard), a webhook secret as an HMAC key, a URL as the request
target. So each is held to its shape before anything is written:

- **Telegram bot token**: ``<bot id>:<key>`` — ASCII digits, one colon, then 20 to 128
  letters, digits, ``_`` or ``-`` (Telegram issues ``123456789:`` + 35 of those). Nothing
  else can reach the URL path: no ``/``, ``.``, ``?``, ``#``, ``%`` or space, so no token can
  name another path of the API host. :func:`telegram_path` builds the path from a token
  that passed and escapes it anyway.
- **Telegram chat id**: an integer (``-1001234567``) or a public ``@name`` (5 to 32
  letters, digits and underscores, starting with a letter — Telegram's rule).
- **Webhook signing secret**: 16 to 256 printable ASCII characters, no whitespace. The
  receiver types it into its own configuration; a short one can be brute-forced from one
  captured delivery.
- **URLs** (webhook, Slack, Discord): one line of printable characters (no control,
  format or whitespace characters), at most 2,048 of them, that pass the SSRF guard
  (``domain.notify.egress``). Slack and Discord URLs are credentials themselves, so a
  refusal never repeats a URL: it names the kind and the reason (the host at most).
- Slack, Discord and Redis channels take no secret; Redis takes no target.

Refusals are :class:`CredentialRefused`, one sentence naming the field, never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, urlsplit

from domain.notify.egress import Allowlist, EgressRefused, Resolver, resolve_target, system_resolver
from models.notification_channel import MAX_SECRET_CHARS, MAX_TARGET_CHARS

MIN_WEBHOOK_SECRET_CHARS: Final = 16

URL_KINDS: Final = ("webhook", "slack", "discord")
TELEGRAM_TOKEN: Final = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,128}")
TELEGRAM_CHAT: Final = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")
WEBHOOK_SECRET: Final = re.compile(r"[!-~]+")  # printable ASCII, space excluded


class CredentialRefused(ValueError):
    """A channel's target or secret does not have its kind's shape; ``str()`` says which
    field and why, without the value."""


def _printable_line(text: str) -> bool:
    """No control, format (bidi overrides, zero-width), separator or unassigned characters,
    and no whitespace at all: what a URL or token pasted on one line can hold."""
    return text.isprintable() and not any(c.isspace() for c in text)


def check_url(
    kind: str,
    url: str | None,
    allowlist: Iterable[str] | Allowlist = (),
    resolver: Resolver = system_resolver,
) -> str:
    """The URL of a webhook, Slack or Discord channel, or :class:`CredentialRefused`."""
    if not url:
        raise CredentialRefused(f"a {kind} channel needs its URL")
    if len(url) > MAX_TARGET_CHARS:
        raise CredentialRefused(f"a channel target is at most {MAX_TARGET_CHARS} characters")
    if not _printable_line(url):
        raise CredentialRefused(
            f"the {kind} URL cannot be used: it must be one line of printable characters "
            "without spaces"
        )
    try:
        urlsplit(url)
    except ValueError:
        # urlsplit's message repeats the host part, which could hold credentials.
        raise CredentialRefused(f"the {kind} URL cannot be used: it is malformed") from None
    try:
        resolve_target(url, allowlist, resolver)
    except EgressRefused as exc:
        raise CredentialRefused(f"the {kind} URL cannot be used: {exc.reason}") from None
    except (OSError, UnicodeError) as exc:
        host = urlsplit(url).hostname or "?"
        raise CredentialRefused(
            f"the {kind} URL cannot be used: its host {host} does not resolve "
            f"({type(exc).__name__})"
        ) from None
    return url


def check_telegram_chat(chat: str | None) -> str:
    if not chat or not TELEGRAM_CHAT.fullmatch(chat):
        raise CredentialRefused(
            "a telegram channel needs the chat id (a number, or @channelname: 5 to 32 "
            "letters, digits or _)"
        )
    return chat


def check_telegram_token(token: str | None) -> str:
    if not token:
        raise CredentialRefused("a telegram channel needs a secret (bot token)")
    if len(token) > MAX_SECRET_CHARS:
        raise CredentialRefused(f"a channel secret is at most {MAX_SECRET_CHARS} characters")
    if not TELEGRAM_TOKEN.fullmatch(token):
        raise CredentialRefused(
            "the telegram bot token must look like 123456789:AAE… (digits, a colon, then 20 "
            "to 128 letters, digits, _ or -)"
        )
    return token


def check_webhook_secret(secret: str | None) -> str:
    if not secret:
        raise CredentialRefused("a webhook channel needs a secret (signing secret)")
    if len(secret) > MAX_SECRET_CHARS:
        raise CredentialRefused(f"a channel secret is at most {MAX_SECRET_CHARS} characters")
    if len(secret) < MIN_WEBHOOK_SECRET_CHARS or not WEBHOOK_SECRET.fullmatch(secret):
        raise CredentialRefused(
            f"the webhook signing secret must be {MIN_WEBHOOK_SECRET_CHARS} to "
            f"{MAX_SECRET_CHARS} printable ASCII characters without spaces (leave it out "
            "and one is generated)"
        )
    return secret


def check_channel(
    kind: str,
    target: str | None,
    secret: str | None,
    allowlist: Iterable[str] | Allowlist = (),
    resolver: Resolver = system_resolver,
) -> None:
    """Refuse (:class:`CredentialRefused`) a target or secret that ``kind`` does not take
    or that lacks its shape; the target first, as the CLI lists them."""
    if kind in URL_KINDS:
        check_url(kind, target, allowlist, resolver)
    elif kind == "telegram":
        check_telegram_chat(target)
    elif kind == "redis":
        if target:
            raise CredentialRefused("a redis channel takes no target (it publishes per user)")
    else:
        raise CredentialRefused(f"there is no channel kind {kind!r}")
    if kind == "webhook":
        check_webhook_secret(secret)
    elif kind == "telegram":
        check_telegram_token(secret)
    elif secret:
        what = "its URL is the credential" if kind in URL_KINDS else "Redis needs none"
        raise CredentialRefused(f"a {kind} channel takes no secret ({what})")


def telegram_path(token: str, method: str = "sendMessage") -> str:
    """``/bot<token>/<method>`` for a token :func:`check_telegram_token` accepts; anything
    else (a row written before these checks, or by another path) is ValueError, which fails
    the delivery for good instead of sending it elsewhere. Escaped all the same (only ``:``
    kept): the path never depends on the pattern alone."""
    if not TELEGRAM_TOKEN.fullmatch(token):
        raise ValueError("the telegram bot token is malformed (not 123456789:AAE…)")
    return f"/bot{quote(token, safe=':')}/{method}"


def shown_target(kind: str, target: str) -> str:
    """The target as listings show it: a Slack or Discord webhook URL is its own secret
    (only scheme and host shown); a webhook URL loses its query string (tokens live there)."""
    if kind not in ("webhook", "slack", "discord"):
        return target
    parts = urlsplit(target)
    base = f"{parts.scheme}://{parts.netloc}"
    if kind != "webhook":
        return f"{base}/***"
    return f"{base}{parts.path}" + ("?***" if parts.query else "")
