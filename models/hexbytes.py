"""Hex identifiers (transaction hashes, wallet addresses) stored as bytes on PostgreSQL.

A trade's hash is ``0x`` + 64 hex digits and its addresses ``0x`` + 40: as text they cost
67 and 43 bytes a row, as ``bytea`` 34 and 22 — most of what made a trade row 228 bytes.
Callers keep seeing the same strings: the column type converts both ways.

The encoding is lossless for any string, because rows already stored and tests hold values
that are not canonical hex (``0xh``, ``0x1``, arbitrary text):

- ``0x`` + an even number of lowercase hex digits (every real hash and address): the byte
  ``00`` then the digits' bytes;
- any other string starting with ``0x``, NUL or ``\\x01``: the byte ``01`` then its UTF-8;
- any other string: its UTF-8 as it is (its first byte is neither ``00`` nor ``01``).

So the encoding is one-to-one and deterministic: equality in SQL (``WHERE hash = :h``)
works on the encoded values. Upper-case hex is not canonical and keeps its case (tag 01).
COPY text writes a value as ``\\\\x`` + the encoding in hex; the bulk path writes a whole
batch of canonical values with one ``replace`` (``models/repositories/bulk.py``).
SQLite keeps the text (it is the small embedded default; its migration changes nothing).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import LargeBinary, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

CANONICAL = re.compile(r"0x(?:[0-9a-f]{2})*")
HEX_TAG = b"\x00"
TEXT_TAG = b"\x01"


def encode(value: str) -> bytes:
    if CANONICAL.fullmatch(value):
        return HEX_TAG + bytes.fromhex(value[2:])
    raw = value.encode()
    if value.startswith(("0x", "\x00", "\x01")):
        return TEXT_TAG + raw
    return raw


def decode(value: bytes) -> str:
    if value[:1] == HEX_TAG:
        return "0x" + value[1:].hex()
    if value[:1] == TEXT_TAG:
        return value[1:].decode()
    return value.decode()


def copy_field(value: str) -> str:
    """``value`` as a COPY text-format ``bytea`` field (hex input, backslash escaped)."""
    return "\\\\x" + encode(value).hex()


class HexBytesType(TypeDecorator[str]):
    """A hex string in Python, ``bytea`` in PostgreSQL (see module)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else encode(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else decode(bytes(value))


def length_check(column: str, length: int) -> str:
    """PostgreSQL: the decoded string of ``column`` is at most ``length`` characters — what
    ``VARCHAR(length)`` enforced before the column held bytes, so a value too long for it
    is still refused by the database (a CHECK violation, dead-lettered like any bad row)."""
    head = f"substring({column} from 1 for 1)"
    return (
        rf"CASE {head} WHEN '\x00'::bytea THEN octet_length({column}) <= {1 + (length - 2) // 2} "
        rf"WHEN '\x01'::bytea THEN char_length(convert_from(substring({column} from 2), 'UTF8')) "
        f"<= {length} ELSE char_length(convert_from({column}, 'UTF8')) <= {length} END"
    )


def HexBytes(length: int) -> TypeEngine[str]:
    """Bytes on PostgreSQL, ``VARCHAR(length)`` (the text as it is) on SQLite."""
    return HexBytesType().with_variant(String(length), "sqlite")
