"""Flower's configuration, computed from hyperwatch's Settings.

``celery -A tasks flower`` (from the checkout, so Flower's default ``--conf=flowerconfig.py``
finds this file) loads options in this order: ``FLOWER_*`` environment variables, then this
file, then the command line. The environment variables hyperwatch reads —
``FLOWER_BASIC_AUTH``, ``FLOWER_ADDRESS``, ``FLOWER_PORT`` — carry Flower's own option names,
so both readings agree; a command-line ``--address``/``--basic-auth`` still wins, and is
what the guard below checks.

Guard: Flower's API and UI control the workers (shut down, revoke, resize pools), so it
refuses to start without credentials unless it listens on loopback (or a Unix socket)
only — one line on stderr and exit code 2. ``/metrics`` and ``/healthcheck`` stay open for
scrapers and probes (Flower exempts them from auth).
"""

from __future__ import annotations

import ipaddress
import sys

from tornado.options import options as _flower

from settings import SettingsError, load_settings

EXIT_USAGE = 2


def _is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # "" (every interface) or a hostname: not provably local


def _refuse(message: str) -> None:
    print(f"hyperwatch flower: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


try:
    _settings = load_settings()
except SettingsError as _exc:
    _refuse(str(_exc))


def _given(option: str) -> bool:
    """Whether the command line sets ``option`` (Flower parsed it before reading this file)."""
    spellings = {f"--{option}", f"--{option.replace('_', '-')}"}
    return any(arg.split("=", 1)[0] in spellings for arg in sys.argv[1:])


address: str = _flower.address if _given("address") else _settings.flower_address
port: int = _flower.port if _given("port") else _settings.flower_port
basic_auth: list[str] = (
    list(_flower.basic_auth or [])
    if _given("basic_auth")
    else (
        _settings.flower_basic_auth.get_secret_value().split(",")
        if _settings.flower_basic_auth is not None
        else []
    )
)
# Flower keeps task history in memory; bound it (its default is 100,000 tasks).
max_tasks = 20_000
# Workers busy with batches answer inspections slowly; Flower's 1 s default times out.
inspect_timeout = 5_000.0

if not basic_auth and not _flower.unix_socket and not _is_loopback(address):
    _refuse(
        f"refusing to serve on {address or 'every interface'}:{port} without FLOWER_BASIC_AUTH "
        "(set user:password, or FLOWER_ADDRESS=127.0.0.1 to stay on this machine)"
    )
