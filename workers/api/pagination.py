"""Cursors: opaque to clients, an object id to the server.

A page is ``{"items": [...], "next_cursor": "…" | null}``; passing ``next_cursor`` back as
``?cursor=`` gives the next page. A cursor encodes the last id of the page it ends (keyset
pagination: objects added or removed meanwhile never shift or repeat a page). It is not a
secret and not signed: a forged one only moves within the caller's own objects.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

from pydantic import BaseModel

from workers.api.errors import ApiError

T = TypeVar("T")
_PREFIX: Final = "c1:"
_MAX_ID: Final = 2**63 - 1
DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 200


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str | None) -> int | None:
    """The id a cursor holds; a cursor this API did not give is 422 ``invalid``."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    digits = text.removeprefix(_PREFIX)
    if not text.startswith(_PREFIX) or not digits.isdigit() or len(digits) > 19:
        raise ApiError(422, "invalid", "cursor is not one this API gave", "cursor")
    value = int(digits)
    if value > _MAX_ID:
        raise ApiError(422, "invalid", "cursor is not one this API gave", "cursor")
    return value


def page_of(rows: Sequence[object], limit: int, render: Callable[[object], T]) -> Page[T]:
    """A page from ``rows`` fetched with ``limit + 1``: the extra row only says there is
    more."""
    shown = list(rows[:limit])
    more = len(rows) > limit
    last = getattr(shown[-1], "id", None) if shown else None
    return Page[T](
        items=[render(row) for row in shown],
        next_cursor=encode(int(last)) if more and last is not None else None,
    )
