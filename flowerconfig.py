"""Flower's configuration, computed from hyperwatch's Settings.

``celery -A tasks flower`` (from the checkout, so Flower's default ``--conf=flowerconfig.py``
finds this file) loads options in this order: ``FLOWER_*`` environment variables, then this
file, then the command line. The environment variables hyperwatch reads —
``FLOWER_BASIC_AUTH``, ``FLOWER_ADDRESS``, ``FLOWER_PORT`` — carry Flower's own option names,
so both readings agree; a command-line ``--address``/``--basic-auth`` still wins, and is
what the guard below checks.

Guard (``workers.flower_guard``, which ``hyperwatch up`` applies too before starting
anything): Flower's API and UI control the workers (shut down, revoke, resize pools), so it
refuses to start — one line on stderr and exit code 2 — without credentials unless it
listens on loopback (or a Unix socket) only, or with a trivially weak password anywhere.
``FLOWER_ALLOW_UNAUTHENTICATED=true`` is the explicit opt-out, warned about at every start.
``/metrics`` and ``/healthcheck`` stay open for scrapers and probes (Flower exempts them).

This file is part of the installed distribution (a top-level module beside
celeryconfig.py), so ``hyperwatch up`` finds it from any directory and passes ``--conf``;
``celery -A tasks flower`` run by hand reads it only from the working directory (or
``--conf``), which the image and the systemd unit provide.
"""

from __future__ import annotations

import sys

from tornado.options import options as _flower

from settings import SettingsError, load_settings
from workers import flower_guard

EXIT_USAGE = 2


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

_verdict = flower_guard.check(
    address=address,
    port=port,
    unix_socket=bool(_flower.unix_socket),
    basic_auth=basic_auth,
    oauth=bool(_flower.auth and _flower.auth_provider),
    allow_unauthenticated=_settings.flower_allow_unauthenticated,
)
if _verdict.refusal is not None:
    _refuse(_verdict.refusal)
if _verdict.warning is not None:
    # Every start, on stderr, whatever Flower's log level: the opt-out is meant to be loud.
    print(f"hyperwatch flower: WARNING: {_verdict.warning}", file=sys.stderr, flush=True)
