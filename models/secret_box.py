"""Notification channel credentials encrypted at rest.

A channel's secret (a webhook's signing secret, a Telegram bot token) and its target (Slack
and Discord webhook URLs carry their credential in the path) would otherwise sit in clear
in the database and in every backup of it. With ``CHANNEL_SECRET_KEYS`` set they are
stored as ``fernet:<token>`` (cryptography's Fernet: AES-128-CBC with HMAC-SHA256, so a
changed byte is an error, never a wrong secret).

- **Rotation.** The first key encrypts, every key decrypts: put a new key first, restart,
  run ``hyperwatch channels encrypt`` (which rewrites every channel under the first key),
  then drop the old key.
- **Turning it on.** A value stored without the prefix is plain text and is read as it is,
  under any keys: setting the keys needs no migration, and ``hyperwatch channels encrypt``
  then encrypts what was stored before.
- **Without keys** values are written in plain text (the one-machine default), and an
  encrypted value cannot be read: :class:`SecretUnavailable` says which setting is missing.

:class:`EncryptedString` is the column type. It finds the :class:`SecretBox` of the engine
it runs on (:func:`bind`, called by ``models.db`` for every engine it builds), so two
engines in one process — tests, tools — never share keys.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import String, TypeDecorator
from sqlalchemy.engine import Dialect, Engine

from settings import fernet_keys

if TYPE_CHECKING:
    from settings import Settings

PREFIX: Final = "fernet:"


class SecretUnavailable(ValueError):
    """A stored value is encrypted and none of the configured keys opens it."""


class SecretBox:
    """Encrypts and decrypts column values with the configured keys (none: plain text)."""

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys]) if keys else None

    @classmethod
    def from_keys(cls, text: str | None) -> SecretBox:
        """Keys as ``CHANNEL_SECRET_KEYS`` holds them; ValueError says what is wrong."""
        return cls(fernet_keys(text))

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        keys = settings.channel_secret_keys
        return cls.from_keys(keys.get_secret_value() if keys else None)

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str) -> str:
        if self._fernet is None:
            return value
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written in plain text (before keys were set, or without keys)
        if self._fernet is None:
            raise SecretUnavailable(
                "a notification channel credential is encrypted but CHANNEL_SECRET_KEYS is not set"
            )
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretUnavailable(
                "a notification channel credential was encrypted with a key that is not in "
                "CHANNEL_SECRET_KEYS (or was altered)"
            ) from None

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()


PLAIN: Final = SecretBox([])
_boxes: weakref.WeakKeyDictionary[Dialect, SecretBox] = weakref.WeakKeyDictionary()


def bind(engine: Engine, box: SecretBox) -> None:
    """Use ``box`` for :class:`EncryptedString` columns on ``engine``."""
    _boxes[engine.dialect] = box  # each engine has its own dialect instance


def box_for(dialect: Dialect) -> SecretBox:
    return _boxes.get(dialect, PLAIN)


class EncryptedString(TypeDecorator[str]):
    """A string column whose values are sealed by the engine's :class:`SecretBox`."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else box_for(dialect).seal(str(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else box_for(dialect).open(value)
