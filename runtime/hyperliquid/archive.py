"""Hyperliquid's historical archive files, pure: LZ4 frames → lines → typed records → trades.

The files (``../shared/reference/hyperliquid-archive.md`` §1-§3) are the node's hourly
output, one LZ4 frame each, one JSON value per line:

* ``node_fills_by_block/hourly/{YYYYMMDD}/{H}.lz4`` — a block per line:
  ``{"local_time", "block_time", "block_number", "events": [[user, fill], …]}``;
* ``node_fills/hourly/…`` (legacy) — one ``[user, fill]`` per line;
* ``node_trades/hourly/…`` (legacy) — one trade per line, with ``side_info`` [buyer, seller]
  and no ``tid``.

What this module gives:

* :func:`iter_line_chunks` streams a file's lines (memory bounded by the chunk size, whatever
  the file size), numbered from 1, optionally skipping the first N. A file that is not an
  LZ4 frame, ends inside a frame or fails its checksum raises :class:`ArchiveError` naming
  the file — the one error that stops a file.
* ``parse_*`` turn one line into a typed record (:class:`ArchiveBlock`, :class:`ArchiveFill`,
  :class:`ArchiveTrade`) or raise :class:`BadLine` with the reason; unknown keys are
  ignored, optional ones may be absent (``twapId`` may be ``null``).
* :class:`ArchiveDecoder` is the bulk path the importer runs: lines in, ``events.Trade``
  (one per trade, derived from its two fills) and ``events.Fill`` (tracked wallets only)
  out, with bad lines counted and kept with their line number. A block made only of
  well-formed adjacent ``B``/``A`` pairs of untracked wallets — nearly every block — is
  decoded by msgspec straight into typed structs of the fields a trade takes; any other
  block is read event by event from orjson's dicts, building a typed record only for
  tracked wallets' fills and for the error message of a fill it refuses. The paths agree
  (unit tests hold them equal, one property-based).

Trade derivation (§3.6, Hyperliquid's own ``Trade::from_fills``): the ``B`` fill (buyer)
and the ``A`` fill (seller) of one trade share ``(coin, time, tid)``; the trade is the ask's
coin, px, sz, hash, time and tid, its side is the taker's (``"A"`` when the ask crossed,
else ``"B"``) and its users are [buyer, seller]. Fills are paired on that key wherever they
are — the two fills of a by-block trade sit side by side in one line, a legacy node_fills
trade spans two lines — and a fill still unpaired ``pair_window`` lines later is given up
as unpaired. ``tid`` 0 (spot dust conversions) and size 0 are skipped. Trades are keyed
``(coin, time, tid)`` exactly as the live feed keys them, so archive rows and live rows meet
on one key.

node_trades has no ``tid``. Its trades get a synthetic one (:func:`synthetic_tid`): 2^62
plus 62 bits of BLAKE2b over ``coin|time ms|px|sz|buyer oid|seller oid`` (px and sz
normalised), the key the reference suggests (§3.6.5). Real tids stay below 2^53, so a
synthetic tid never equals a real one, and the same line always gets the same tid: a rerun
adds nothing. A node_trades row can therefore not meet a live row of the same trade (whose
tid is real); node_trades covers 2025-03-22 to 2025-06-21 only.

Times: the ISO strings (UTC, no zone, usually nine fractional digits) are parsed by hand to
nanoseconds (:func:`parse_iso_ns`; 0-9 fractional digits, an optional ``Z``); ``datetime``
would stop at microseconds. Fill ``time`` is already integer milliseconds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Collection, Generator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import IO, Annotated, Any, Final, Literal, NamedTuple, cast

import lz4.frame
import msgspec
import orjson
from lz4.frame import LZ4FrameDecompressor

from events import MAX_TIME_MS, MIN_TIME_MS, Fill, Side, Trade
from runtime.hyperliquid.decoders import MAX_ADDRESS, MAX_COIN, MAX_HASH, MAX_INT

ArchiveFormat = Literal["node_trades", "node_fills", "node_fills_by_block"]
FORMATS: Final[tuple[ArchiveFormat, ...]] = ("node_trades", "node_fills", "node_fills_by_block")

LZ4_MAGIC: Final = b"\x04\x22\x4d\x18"
# Skippable frames (magic 0x184D2A50-5F, little-endian) may sit between frames.
_SKIPPABLE_LOW: Final = 0x184D2A50
_CHUNK: Final = 1 << 20
SYNTHETIC_TID_BASE: Final = 1 << 62
_ZERO: Final = Decimal(0)


class ArchiveError(Exception):
    """A file that cannot be read on: not LZ4, truncated, corrupt. The message names it."""


class BadLine(ValueError):
    """One line (or one event of a line) that is not what its format promises."""


# --- times ------------------------------------------------------------------------------

_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_day_cache: dict[str, int] = {}


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def parse_iso_ns(text: str) -> int:
    """``YYYY-MM-DDTHH:MM:SS[.f…]`` (UTC, 0-9 fractional digits, optional ``Z``) → ns since
    the epoch. Raises ValueError naming what is wrong."""
    if type(text) is not str:
        raise ValueError(f"expected an ISO time string, got {type(text).__name__}")
    if (
        len(text) < 19
        or text[4] != "-"
        or text[7] != "-"
        or text[10] not in "T "
        or text[13] != ":"
        or text[16] != ":"
    ):
        raise ValueError(f"not an ISO time: {text[:40]!r}")
    date = text[:10]
    day = _day_cache.get(date)
    if day is None:
        if not (_digits(date[:4]) and _digits(date[5:7]) and _digits(date[8:])):
            raise ValueError(f"not an ISO time: {text[:40]!r}")
        try:
            day = dt.date(int(date[:4]), int(date[5:7]), int(date[8:])).toordinal()
        except ValueError:
            raise ValueError(f"no such date: {text[:40]!r}") from None
        day -= _EPOCH_ORDINAL
        if len(_day_cache) > 4096:
            _day_cache.clear()
        _day_cache[date] = day
    hh, mm, ss = text[11:13], text[14:16], text[17:19]
    if not (_digits(hh) and _digits(mm) and _digits(ss)):
        raise ValueError(f"not an ISO time: {text[:40]!r}")
    hours, minutes, seconds = int(hh), int(mm), int(ss)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"time of day out of range: {text[:40]!r}")
    rest = text[19:]
    if rest.endswith("Z"):
        rest = rest[:-1]
    fraction = 0
    if rest:
        digits = rest[1:]
        if rest[0] != "." or not 1 <= len(digits) <= 9 or not _digits(digits):
            raise ValueError(f"fraction must be '.' and 1 to 9 digits: {text[:40]!r}")
        fraction = int(digits) * 10 ** (9 - len(digits))
    seconds_total = ((day * 24 + hours) * 60 + minutes) * 60 + seconds
    return seconds_total * 1_000_000_000 + fraction


def format_iso_ns(ns: int) -> str:
    """ns since the epoch → the archive's ISO form, nine fractional digits, no zone."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{fraction:09d}"


# --- typed records ----------------------------------------------------------------------


class ArchiveFill(NamedTuple):
    """One ``[user, fill]`` event of node_fills / node_fills_by_block (§3.2)."""

    user: str
    coin: str
    px: Decimal
    sz: Decimal
    side: Side
    time: int
    start_position: Decimal
    dir: str
    closed_pnl: Decimal
    hash: str
    oid: int
    crossed: bool
    fee: Decimal
    tid: int
    fee_token: str
    builder_fee: Decimal | None = None
    cloid: str | None = None
    liquidation: dict[str, Any] | None = None
    builder: str | None = None
    twap_id: int | None = None

    def to_event(self) -> Fill:
        return Fill(
            user=self.user,
            coin=self.coin,
            time=self.time,
            tid=self.tid,
            oid=self.oid,
            px=self.px,
            sz=self.sz,
            side=self.side,
            dir=self.dir,
            start_position=self.start_position,
            closed_pnl=self.closed_pnl,
            fee=self.fee,
            fee_token=self.fee_token,
            crossed=self.crossed,
            hash=self.hash,
        )


class ArchiveBlock(NamedTuple):
    """One node_fills_by_block line (§3.1)."""

    local_time_ns: int
    block_time_ns: int
    block_number: int
    fills: list[ArchiveFill]


class ArchiveTrade(NamedTuple):
    """One node_trades line (§3.4); ``side`` is the aggressor's."""

    coin: str
    side: Side
    time_ns: int
    px: Decimal
    sz: Decimal
    hash: str
    trade_dir_override: str
    buyer: str
    seller: str
    buyer_oid: int
    seller_oid: int

    @property
    def time(self) -> int:
        return self.time_ns // 1_000_000

    @property
    def tid(self) -> int:
        return synthetic_tid(
            self.coin, self.time, self.px, self.sz, self.buyer_oid, self.seller_oid
        )

    def to_event(self) -> Trade:
        return Trade(
            self.coin, self.time, self.tid, self.px, self.sz, self.side, self.hash,
            self.buyer, self.seller,
        )  # fmt: skip


def synthetic_tid(coin: str, time_ms: int, px: Decimal, sz: Decimal, oid0: int, oid1: int) -> int:
    """The tid a node_trades trade is stored under: 2^62 + 62 bits of BLAKE2b of its key."""
    key = f"{coin}|{time_ms}|{px.normalize():f}|{sz.normalize():f}|{oid0}|{oid1}".encode()
    digest = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return SYNTHETIC_TID_BASE | (digest & (SYNTHETIC_TID_BASE - 1))


# --- field checks -----------------------------------------------------------------------


def _field(obj: dict[str, Any], name: str) -> Any:
    if name not in obj:
        raise BadLine(f"{name}: missing")
    return obj[name]


def _str(obj: dict[str, Any], name: str, limit: int) -> str:
    value = _field(obj, name)
    if type(value) is not str or not value:
        raise BadLine(f"{name}: expected a non-empty string, got {_kind(value)}")
    return _fits(name, value, limit)


def _fits(name: str, value: str, limit: int) -> str:
    """``value`` if its column holds it: one line too long for storage is refused here,
    alone, instead of failing its whole batch in the database."""
    if len(value) > limit:
        raise BadLine(f"{name}: longer than {limit} characters: {value[:20]!r}…")
    return value


def _opt_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not str:
        raise BadLine(f"{name}: expected a string, got {_kind(value)}")
    return value


def _int(obj: dict[str, Any], name: str) -> int:
    value = _field(obj, name)
    if type(value) is not int:
        raise BadLine(f"{name}: expected an integer, got {_kind(value)}")
    return _bigint(name, value)


def _opt_int(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise BadLine(f"{name}: expected an integer or null, got {_kind(value)}")
    return _bigint(name, value)


def _bigint(name: str, value: int) -> int:
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise BadLine(f"{name}: out of the 64-bit integer range")
    return value


def _dec(obj: dict[str, Any], name: str) -> Decimal:
    return _decimal(name, _field(obj, name))


def _opt_dec(obj: dict[str, Any], name: str) -> Decimal | None:
    value = obj.get(name)
    return None if value is None else _decimal(name, value)


def _decimal(name: str, value: Any) -> Decimal:
    if type(value) is not str:
        raise BadLine(f"{name}: expected a decimal string, got {_kind(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise BadLine(f"{name}: not a decimal: {value[:40]!r}") from None
    if not number.is_finite():
        raise BadLine(f"{name}: not a finite decimal: {value[:40]!r}")
    return number


def _side(obj: dict[str, Any]) -> Side:
    value = _field(obj, "side")
    if value == "B":
        return "B"
    if value == "A":
        return "A"
    raise BadLine(f"side: expected 'B' or 'A', got {str(value)[:10]!r}")


def _time_ms(obj: dict[str, Any]) -> int:
    value = _int(obj, "time")
    if not MIN_TIME_MS <= value <= MAX_TIME_MS:
        raise BadLine("time: out of range (not a date in the years 1 to 9999)")
    return value


def _iso(obj: dict[str, Any], name: str) -> int:
    try:
        ns = parse_iso_ns(_field(obj, name))
    except ValueError as exc:
        raise BadLine(f"{name}: {exc}") from None
    if not MIN_TIME_MS <= ns // 1_000_000 <= MAX_TIME_MS:
        raise BadLine(f"{name}: out of range")
    return ns


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _load(line: bytes | str) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc}") from None


# --- line parsers (typed) ---------------------------------------------------------------


def fill_from_event(event: Any) -> ArchiveFill:
    """``[user, fill]`` → :class:`ArchiveFill`; raises :class:`BadLine`."""
    if type(event) is not list or len(event) != 2:
        raise BadLine("event: expected [user, fill]")
    user, fill = event
    if type(user) is not str or not user:
        raise BadLine(f"user: expected an address string, got {_kind(user)}")
    _fits("user", user, MAX_ADDRESS)
    if type(fill) is not dict:
        raise BadLine(f"fill: expected an object, got {_kind(fill)}")
    crossed = _field(fill, "crossed")
    if type(crossed) is not bool:
        raise BadLine(f"crossed: expected a boolean, got {_kind(crossed)}")
    liquidation = fill.get("liquidation")
    if liquidation is not None and type(liquidation) is not dict:
        raise BadLine(f"liquidation: expected an object, got {_kind(liquidation)}")
    px, sz = _dec(fill, "px"), _dec(fill, "sz")
    if px <= 0:
        raise BadLine(f"px: must be positive, got {fill['px'][:40]!r}")
    if sz < 0:
        raise BadLine(f"sz: must not be negative, got {fill['sz'][:40]!r}")
    tid = _int(fill, "tid")
    if tid < 0:
        raise BadLine("tid: must not be negative")
    return ArchiveFill(
        user=user.lower(),
        coin=_str(fill, "coin", MAX_COIN),
        px=px,
        sz=sz,
        side=_side(fill),
        time=_time_ms(fill),
        start_position=_dec(fill, "startPosition"),
        dir=_str(fill, "dir", 32),
        closed_pnl=_dec(fill, "closedPnl"),
        hash=_str(fill, "hash", MAX_HASH),
        oid=_int(fill, "oid"),
        crossed=crossed,
        fee=_dec(fill, "fee"),
        tid=tid,
        fee_token=_str(fill, "feeToken", 16),
        builder_fee=_opt_dec(fill, "builderFee"),
        cloid=_opt_str(fill, "cloid"),
        liquidation=liquidation,
        builder=_opt_str(fill, "builder"),
        twap_id=_opt_int(fill, "twapId"),
    )


def parse_node_fill(line: bytes | str) -> ArchiveFill:
    """One node_fills line: ``[user, fill]``."""
    return fill_from_event(_load(line))


def _block_envelope(obj: Any) -> tuple[int, int, int, list[Any]]:
    if type(obj) is not dict:
        raise BadLine(f"block: expected an object, got {_kind(obj)}")
    events = _field(obj, "events")
    if type(events) is not list:
        raise BadLine(f"events: expected a list, got {_kind(events)}")
    return _iso(obj, "local_time"), _iso(obj, "block_time"), _int(obj, "block_number"), events


def parse_fills_by_block(line: bytes | str) -> ArchiveBlock:
    """One node_fills_by_block line; a bad event makes the whole line bad here."""
    local_ns, block_ns, number, events = _block_envelope(_load(line))
    fills = []
    for index, event in enumerate(events):
        try:
            fills.append(fill_from_event(event))
        except BadLine as exc:
            raise BadLine(f"event {index}: {exc}") from None
    return ArchiveBlock(local_ns, block_ns, number, fills)


def parse_node_trade(line: bytes | str) -> ArchiveTrade:
    """One node_trades line."""
    obj = _load(line)
    if type(obj) is not dict:
        raise BadLine(f"trade: expected an object, got {_kind(obj)}")
    side_info = _field(obj, "side_info")
    if type(side_info) is not list or len(side_info) != 2:
        raise BadLine("side_info: expected [buyer, seller]")
    parties = []
    for index, info in enumerate(side_info):
        if type(info) is not dict:
            raise BadLine(f"side_info[{index}]: expected an object, got {_kind(info)}")
        try:
            parties.append((_str(info, "user", MAX_ADDRESS).lower(), _int(info, "oid")))
        except BadLine as exc:
            raise BadLine(f"side_info[{index}].{exc}") from None
    px, sz = _dec(obj, "px"), _dec(obj, "sz")
    if px <= 0:
        raise BadLine(f"px: must be positive, got {obj['px'][:40]!r}")
    if sz < 0:
        raise BadLine(f"sz: must not be negative, got {obj['sz'][:40]!r}")
    override = obj.get("trade_dir_override", "Na")
    return ArchiveTrade(
        coin=_str(obj, "coin", MAX_COIN),
        side=_side(obj),
        time_ns=_iso(obj, "time"),
        px=px,
        sz=sz,
        hash=_str(obj, "hash", MAX_HASH),
        trade_dir_override=override if type(override) is str else "Na",
        buyer=parties[0][0],
        seller=parties[1][0],
        buyer_oid=parties[0][1],
        seller_oid=parties[1][1],
    )


# --- formats ----------------------------------------------------------------------------


def format_from_path(path: str | Path) -> ArchiveFormat | None:
    """The format named by the nearest path part ``node_trades``/``node_fills``/
    ``node_fills_by_block`` (the S3 key prefix), or None."""
    for part in reversed(Path(path).parts):
        if part in FORMATS:
            return part
    return None


def archive_key(path: str | Path) -> str:
    """The file's S3-style key from its format directory on (``node_fills_by_block/hourly/
    20250801/0.lz4``), or the path as given when it has no format directory."""
    parts = Path(path).parts
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] in FORMATS:
            return "/".join(parts[index:])
    return str(path)


def format_from_line(line: bytes | str) -> ArchiveFormat | None:
    """Recognise a format from one line's shape, or None."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is dict:
        if "events" in obj:
            return "node_fills_by_block"
        if "side_info" in obj:
            return "node_trades"
    if type(obj) is list and len(obj) == 2 and type(obj[1]) is dict:
        return "node_fills"
    return None


def sort_key(path: str | Path) -> tuple[int, str, int, str]:
    """Order files as the exchange wrote them: by format (legacy first), date, then hour as
    an integer (keys are not zero-padded: 10.lz4 sorts after 9.lz4)."""
    fmt = format_from_path(path)
    p = Path(path)
    rank = FORMATS.index(fmt) if fmt else len(FORMATS)
    stem = p.name.split(".")[0]
    hour = int(stem) if _digits(stem) else -1
    return (rank, p.parent.name, hour, str(p))


# --- the LZ4 stream ---------------------------------------------------------------------


@dataclass(slots=True)
class LineChunk:
    """Consecutive lines of a file: ``lines[i]`` is line ``first + i`` (1-based)."""

    first: int
    lines: list[bytes]
    offset: int  # compressed bytes read so far (progress)


def iter_line_chunks(
    path: str | Path, *, skip: int = 0, label: str | None = None, chunk_size: int = _CHUNK
) -> Generator[LineChunk, None, None]:
    """The decompressed lines of an LZ4-frame file, in chunks, after the first ``skip``.

    Streams: reads ``chunk_size`` compressed bytes at a time, so memory stays bounded by a
    chunk and its decompressed size whatever the file. Several concatenated frames (and
    skippable frames) are read in order. Raises :class:`ArchiveError` naming the file
    (``label``, default the path) when it is not LZ4, ends inside a frame or is corrupt;
    the lines yielded before that are good as far as LZ4 can tell.
    """
    name = label or str(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
    except OSError as exc:
        raise ArchiveError(f"{name}: cannot open: {exc.strerror or exc}") from None
    try:
        yield from _chunks(handle, name, skip, chunk_size)
    finally:
        handle.close()


def _magic_error(name: str, head: bytes) -> ArchiveError:
    if not head:
        return ArchiveError(f"{name}: not an LZ4 frame (empty file)")
    shown = head[:4].hex(" ")
    return ArchiveError(f"{name}: not an LZ4 frame (magic {shown}, expected 04 22 4d 18)")


def _chunks(handle: Any, name: str, skip: int, chunk_size: int) -> Iterator[LineChunk]:
    decompressor: LZ4FrameDecompressor | None = None
    frames = 0
    buf = b""  # compressed bytes read and not yet consumed
    tail = b""  # decompressed bytes after the last newline
    line_no = offset = 0
    eof = False

    def read() -> bytes:
        nonlocal offset, eof
        try:
            data = b"" if eof else handle.read(chunk_size)
        except OSError as exc:
            raise ArchiveError(f"{name}: read error: {exc.strerror or exc}") from None
        offset += len(data)
        eof = not data
        return bytes(data)

    while True:
        if decompressor is None:  # at a frame boundary: what comes next?
            while len(buf) < 8 and not eof:
                buf += read()
            if not buf:
                if not frames:
                    raise _magic_error(name, buf)
                break
            magic = buf[:4]
            if magic == LZ4_MAGIC:
                decompressor = LZ4FrameDecompressor()
                frames += 1
                continue
            if len(buf) >= 8 and (int.from_bytes(magic, "little") & ~0xF) == _SKIPPABLE_LOW:
                left = 8 + int.from_bytes(buf[4:8], "little")
                while len(buf) < left and not eof:
                    left -= len(buf)
                    buf = read()
                if len(buf) < left:
                    raise ArchiveError(f"{name}: truncated: the file ends inside a skippable frame")
                buf = buf[left:]
                continue
            if not frames:
                raise _magic_error(name, buf)
            raise ArchiveError(
                f"{name}: corrupt: the bytes after frame {frames} are not an LZ4 frame "
                f"(magic {magic.hex(' ')})"
            )
        if not buf:
            buf = read()
            if not buf:
                raise ArchiveError(
                    f"{name}: truncated: the file ends inside an LZ4 frame ({offset:,} bytes)"
                )
        try:
            out = decompressor.decompress(buf)
        except RuntimeError as exc:
            raise ArchiveError(f"{name}: corrupt LZ4 data near byte {offset:,}: {exc}") from None
        buf = b""
        if decompressor.eof:
            buf = decompressor.unused_data or b""
            decompressor = None
        if not out:
            continue
        pieces = out.split(b"\n")
        if tail:  # joined to the first line only: ``tail + out`` would copy all of it again
            pieces[0] = tail + pieces[0]
        tail = pieces.pop()
        first = line_no + 1
        line_no += len(pieces)
        if line_no > skip:
            if first <= skip:
                pieces = pieces[skip - first + 1 :]
                first = skip + 1
            yield LineChunk(first, pieces, offset)
    if tail:  # a last line without its newline
        line_no += 1
        if line_no > skip:
            yield LineChunk(line_no, [tail], offset)


def open_lz4_writer(path: str | Path, compression_level: int = 9) -> IO[bytes]:
    """A file to write archive lines into, framed as the real objects are: independent 4 MiB
    blocks with a content checksum and no content size (header ``04 22 4D 18 64 70 B9``,
    §2). Level 9 is what ``lz4 -9`` writes; lower levels write faster, read the same."""
    handle = lz4.frame.open(
        path,
        "wb",
        compression_level=compression_level,
        block_size=lz4.frame.BLOCKSIZE_MAX4MB,
        block_linked=False,
        content_checksum=True,
    )
    return cast(IO[bytes], handle)


# --- the bulk decoder -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadLineReport:
    line: int
    reason: str


@dataclass(slots=True)
class DecodeCounts:
    lines: int = 0
    fills: int = 0
    skipped_dust: int = 0  # tid 0 or size 0
    duplicate_fills: int = 0  # the same side of a (coin, time, tid) seen twice
    unpaired_fills: int = 0  # no counterpart within pair_window lines, or at the end


@dataclass(slots=True)
class DecodeOutput:
    """What :meth:`ArchiveDecoder.feed` produced since the last :meth:`ArchiveDecoder.take`."""

    trades: list[Trade] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    bad: list[BadLineReport] = field(default_factory=list)


# Pending fill: (side, user, px, sz, crossed, hash, line).
_ASK_FIELDS: Final = itemgetter("coin", "px", "sz", "side", "time", "tid", "crossed", "hash")
_BID_FIELDS: Final = itemgetter("coin", "px", "sz", "side", "time", "tid", "crossed")
_make_trade: Final = partial(tuple.__new__, Trade)  # Trade(*fields) without a Python frame
# Bounds a fast-path price or size must lie within (a finite, positive, sane number); one
# outside them goes the long way, whose checks decide.
_HUGE: Final = Decimal("1e30")
_Pending = tuple[str, str, Decimal, Decimal, bool, str, int]
_CACHE_MAX: Final = 200_000  # entries of each fast-path cache; emptied when over


class _PairFill(msgspec.Struct, gc=False):
    """What a trade takes of a fill (§3.6), typed and bounded as storage needs: the
    by-block fast path's view of one."""

    coin: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_COIN)]
    px: str
    sz: str
    side: str
    time: Annotated[int, msgspec.Meta(ge=MIN_TIME_MS, le=MAX_TIME_MS)]
    tid: Annotated[int, msgspec.Meta(gt=0, le=MAX_INT)]
    crossed: bool
    hash: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_HASH)]


_User = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ADDRESS)]


class _PairBlock(msgspec.Struct, gc=False):
    events: list[tuple[_User, _PairFill]]


# msgspec decodes a block straight into these typed structs, checking every type in C and
# skipping the dozen fields a trade does not need: half the cost of orjson building a dict
# per fill (docs/PERFORMANCE.md, "Archive import"). Anything it refuses takes the general
# path, which says why.
_decode_pairs: Final = msgspec.json.Decoder(_PairBlock).decode


class ArchiveDecoder:
    """Lines of one file → trades and tracked wallets' fills, buffering unpaired fills.

    Feed chunks in order (:meth:`feed`), collect with :meth:`take`; :meth:`resume_line` is
    the last line whose every product has been taken (a fill waiting for its counterpart
    holds it back), so a resumed import restarts after it and loses nothing. At the end,
    :meth:`finish` gives up on the fills still unpaired.
    """

    def __init__(
        self,
        fmt: ArchiveFormat,
        wallets: Collection[str] = frozenset(),
        pair_window: int = 10_000,
    ) -> None:
        self.format = fmt
        self.wallets = frozenset(w.lower() for w in wallets)
        self.pair_window = pair_window
        self.counts = DecodeCounts()
        self.out = DecodeOutput()
        self._pending: dict[tuple[str, int, int], _Pending] = {}
        self._numbers: dict[str, Decimal] = {}  # the fast path's prices and sizes
        self._users: dict[str, str] = {}  # address as written → lowercase
        self._last_line = 0
        self._line_handler: Callable[[bytes, int], None] = {
            "node_fills_by_block": self._block_line,
            "node_fills": self._fill_line,
            "node_trades": self._trade_line,
        }[fmt]

    def feed(self, chunk: LineChunk) -> None:
        handle = self._line_handler
        bad = self.out.bad
        line_no = chunk.first
        for line in chunk.lines:
            if line and not line.isspace():
                try:
                    handle(line, line_no)
                except BadLine as exc:
                    bad.append(BadLineReport(line_no, str(exc)))
            line_no += 1
        self.counts.lines += len(chunk.lines)
        self._last_line = line_no - 1
        if self._pending:
            self._expire(self._last_line - self.pair_window)

    def take(self) -> DecodeOutput:
        out, self.out = self.out, DecodeOutput()
        return out

    def resume_line(self) -> int:
        """Lines 1..N are fully accounted for in what has been taken."""
        if self._pending:
            oldest = next(iter(self._pending.values()))[6]
            return min(self._last_line, oldest - 1)
        return self._last_line

    def finish(self) -> None:
        """End of file: fills still waiting for a counterpart are unpaired."""
        self.counts.unpaired_fills += len(self._pending)
        self._pending.clear()

    def _expire(self, before_line: int) -> None:
        pending = self._pending
        while pending:
            key, value = next(iter(pending.items()))
            if value[6] > before_line:
                return
            del pending[key]
            self.counts.unpaired_fills += 1

    # --- per line --------------------------------------------------------------------

    def _block_line(self, line: bytes, line_no: int) -> None:
        """One block: first as a block of well-formed pairs only (:meth:`_pairs_block`),
        else fill by fill (:meth:`_mixed_block`)."""
        try:
            events = _decode_pairs(line).events
        except msgspec.MsgspecError:
            pass  # a field of another type, a lone fill's shape, bad JSON: the long way
        else:
            if self._pairs_block(events):
                return
        self._mixed_block(line, line_no)

    def _pairs_block(self, events: list[tuple[str, _PairFill]]) -> bool:
        """The usual block: every event in an adjacent ``B``/``A`` pair of one trade, none
        of a tracked wallet. Its trades are checked as :meth:`_mixed_block`'s fast path
        checks them (the types already were, by the decoder) and kept only if the whole
        block passes: True. Anything else — an odd count, a pair that does not match, dust,
        a price out of bounds, a tracked wallet — leaves nothing kept and returns False,
        and the block goes the long way, which decides."""
        count = len(events)
        if count % 2:
            return False
        wallets = self.wallets
        numbers, numbers_get = self._numbers, self._numbers.get
        users_get = self._users.get
        trades: list[Trade] = []
        append, make = trades.append, _make_trade
        pairs = iter(events)
        for (buyer, bid), (seller, ask) in zip(pairs, pairs, strict=True):
            coin, px, sz, time, tid = ask.coin, ask.px, ask.sz, ask.time, ask.tid
            if not (
                ask.side == "A"
                and bid.side == "B"
                and bid.tid == tid
                and bid.time == time
                and bid.coin == coin
                and bid.px == px
                and bid.sz == sz
            ):  # the decoder checked the bounds: types, lengths, time and tid ranges
                return False
            # Prices and sizes repeat (a level trades many times, lots are round): each
            # text is made a Decimal and bounds-checked once, then shared (immutable).
            px_d = numbers_get(px)
            if px_d is None and (px_d := self._number(px)) is None:
                return False
            sz_d = numbers_get(sz)
            if sz_d is None and (sz_d := self._number(sz)) is None:
                return False
            # The same few wallets trade again and again: one lowercase copy of each.
            buyer = users_get(buyer) or self._user(buyer)
            seller = users_get(seller) or self._user(seller)
            if wallets and (buyer in wallets or seller in wallets):
                return False  # their fills are kept whole: the long way reads them
            append(make((coin, time, tid, px_d, sz_d, "A" if ask.crossed else "B",
                         ask.hash, buyer, seller)))  # fmt: skip
        if len(numbers) > _CACHE_MAX:
            numbers.clear()
        self.out.trades += trades
        self.counts.fills += count
        return True

    def _number(self, text: str) -> Decimal | None:
        """``text`` as a Decimal within the fast path's bounds (cached), else None."""
        try:
            value = Decimal(text)
            if not _ZERO < value < _HUGE:
                return None
        except InvalidOperation:  # not a number, or NaN compared
            return None
        self._numbers[text] = value
        return value

    def _user(self, address: str) -> str:
        users = self._users
        if len(users) > _CACHE_MAX:
            users.clear()
        lowered = users[address] = address.lower()
        return lowered

    def _mixed_block(self, line: bytes, line_no: int) -> None:
        """One block, event by event. Its trades nearly always come as adjacent fills, ``B`` then ``A`` of
        one tid (§3.6): such a pair is checked on what the trade takes from it — the ask's
        coin, px, sz, time, tid, crossed and hash, both users, and the bid agreeing with the
        ask on coin, px, sz, time and tid — and made into a trade at once. Anything else (a lone fill, another order, dust, a fill that
        fails a check) goes through :meth:`_event` one fill at a time, which pairs it
        across events and lines or refuses it with the reason."""
        obj = _load(line)
        events = obj.get("events") if type(obj) is dict else None
        if type(events) is not list:
            _block_envelope(obj)  # raises with the reason
            raise BadLine("events: expected a list")  # pragma: no cover - _block_envelope raised
        failures: list[str] = []
        count = len(events)
        wallets = self.wallets
        append = self.out.trades.append
        ask_fields, bid_fields, make = _ASK_FIELDS, _BID_FIELDS, _make_trade
        paired = 0
        index = 0
        while index < count:
            if index + 1 < count:
                try:
                    (buyer, bid), (seller, ask) = events[index], events[index + 1]
                    coin, px, sz, side, time, tid, crossed, hash_ = ask_fields(ask)
                    bid_coin, bid_px, bid_sz, bid_side, bid_time, bid_tid, bid_crossed = bid_fields(
                        bid
                    )
                except (ValueError, TypeError, KeyError):
                    pass
                else:
                    if (
                        side == "A"
                        and bid_side == "B"
                        and tid == bid_tid
                        and time == bid_time
                        and coin == bid_coin
                        and px == bid_px
                        and sz == bid_sz
                        and type(bid_crossed) is bool
                        and type(tid) is int
                        and 0 < tid <= MAX_INT
                        and type(time) is int
                        and MIN_TIME_MS <= time <= MAX_TIME_MS
                        and type(coin) is str
                        and 0 < len(coin) <= MAX_COIN
                        and type(px) is str
                        and type(sz) is str
                        and type(crossed) is bool
                        and type(hash_) is str
                        and 0 < len(hash_) <= MAX_HASH
                        and type(buyer) is str
                        and 0 < len(buyer) <= MAX_ADDRESS
                        and type(seller) is str
                        and 0 < len(seller) <= MAX_ADDRESS
                    ):
                        try:
                            px_d, sz_d = Decimal(px), Decimal(sz)
                            ok = _ZERO < px_d < _HUGE and _ZERO < sz_d < _HUGE
                        except InvalidOperation:
                            ok = False
                        if ok:
                            buyer, seller = buyer.lower(), seller.lower()
                            append(make((coin, time, tid, px_d, sz_d, "A" if crossed else "B",
                                         hash_, buyer, seller)))  # fmt: skip
                            paired += 2
                            if wallets and (buyer in wallets or seller in wallets):
                                for offset, user in ((0, buyer), (1, seller)):
                                    if user in wallets:
                                        try:
                                            fill = fill_from_event(events[index + offset])
                                            self.out.fills.append(fill.to_event())
                                        except BadLine as exc:
                                            failures.append(f"event {index + offset}: {exc}")
                            index += 2
                            continue
            try:
                self._event(events[index], line_no)
            except BadLine as exc:
                failures.append(f"event {index}: {exc}")
            index += 1
        self.counts.fills += paired
        if failures:
            more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
            raise BadLine(failures[0] + more)

    def _fill_line(self, line: bytes, line_no: int) -> None:
        self._event(_load(line), line_no)

    def _trade_line(self, line: bytes, line_no: int) -> None:
        record = parse_node_trade(line)
        if record.sz == _ZERO:
            self.counts.skipped_dust += 1
            return
        self.out.trades.append(record.to_event())

    def _event(self, event: Any, line_no: int) -> None:
        """One ``[user, fill]``: checked inline on the fields a trade needs; anything not
        plainly well-formed goes through :func:`fill_from_event`, which refuses it with the
        reason (or accepts it: the two agree)."""
        self.counts.fills += 1
        try:
            user, fill = event
            coin, px, sz, side, time, tid, crossed, hash_ = _ASK_FIELDS(fill)
        except (ValueError, TypeError, KeyError):
            pass  # the typed parser below says what is wrong
        else:
            if (
                type(event) is list
                and type(fill) is dict
                and type(user) is str
                and 0 < len(user) <= MAX_ADDRESS
                and type(coin) is str
                and 0 < len(coin) <= MAX_COIN
                and type(px) is str
                and type(sz) is str
                and (side == "B" or side == "A")
                and type(time) is int
                and MIN_TIME_MS <= time <= MAX_TIME_MS
                and type(tid) is int
                and 0 <= tid <= MAX_INT
                and type(crossed) is bool
                and type(hash_) is str
                and 0 < len(hash_) <= MAX_HASH
            ):
                try:
                    px_d, sz_d = Decimal(px), Decimal(sz)
                except InvalidOperation:
                    pass
                else:
                    if px_d.is_finite() and sz_d.is_finite() and px_d > 0 and sz_d >= 0:
                        user = user.lower()
                        self._pair(coin, time, tid, side, user, px_d, sz_d, crossed, hash_, line_no)
                        if user in self.wallets:
                            # Tracked: every field matters; the typed parser checks them.
                            self.out.fills.append(fill_from_event(event).to_event())
                        return
        record = fill_from_event(event)  # raises with the reason, or accepts it
        self._pair(
            record.coin, record.time, record.tid, record.side, record.user, record.px,
            record.sz, record.crossed, record.hash, line_no,
        )  # fmt: skip
        if record.user in self.wallets:
            self.out.fills.append(record.to_event())

    def _pair(
        self,
        coin: str,
        time: int,
        tid: int,
        side: str,
        user: str,
        px: Decimal,
        sz: Decimal,
        crossed: bool,
        hash_: str,
        line_no: int,
    ) -> None:
        if tid == 0 or sz == _ZERO:
            self.counts.skipped_dust += 1
            return
        key = (coin, time, tid)
        other = self._pending.pop(key, None)
        if other is None:
            self._pending[key] = (side, user, px, sz, crossed, hash_, line_no)
            return
        if other[0] == side:  # the same fill twice: keep waiting for the other side
            self._pending[key] = other
            self.counts.duplicate_fills += 1
            return
        if side == "A":
            seller, ask_px, ask_sz, ask_crossed, ask_hash, buyer = (
                user,
                px,
                sz,
                crossed,
                hash_,
                other[1],
            )
        else:
            seller, ask_px, ask_sz, ask_crossed = other[1], other[2], other[3], other[4]
            ask_hash, buyer = other[5], user
        self.out.trades.append(
            Trade(coin, time, tid, ask_px, ask_sz, "A" if ask_crossed else "B", ask_hash, buyer, seller)
        )  # fmt: skip


def decode_file(
    path: str | Path,
    fmt: ArchiveFormat,
    wallets: Collection[str] = frozenset(),
    label: str | None = None,
) -> tuple[DecodeOutput, DecodeCounts]:
    """A whole file at once (tests, small files): every trade, fill and bad line."""
    decoder = ArchiveDecoder(fmt, wallets)
    total = DecodeOutput()
    for chunk in iter_line_chunks(path, label=label):
        decoder.feed(chunk)
        out = decoder.take()
        total.trades += out.trades
        total.fills += out.fills
        total.bad += out.bad
    decoder.finish()
    return total, decoder.counts
