"""The block ``hyperwatch up`` prints once everything runs: where things are, how to stop.

Pure: settings and options in, lines out. Never a secret: URLs are redacted
(``settings.redact_url``) and Flower's credentials are named by the setting they come from.
"""

from __future__ import annotations

from settings import Settings, redact_url
from workers import flower_guard
from workers.supervisor.plan import SIM_HOST, UpOptions, ingester_health_ports, runs_api

_ANY_ADDRESS = ("", "0.0.0.0", "::")


def _http(host: str, port: int, path: str = "") -> str:
    shown = "127.0.0.1" if host in _ANY_ADDRESS else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}{path}"


def _feed(settings: Settings, options: UpOptions) -> str:
    if options.feed == "sim":
        return (
            f"the built-in simulator (ws://{SIM_HOST}:{options.sim_port}/ws, "
            f"{options.sim_users} simulated wallets, {options.sim_rate:g} trades/s)"
        )
    return f"Hyperliquid ({settings.hl_ws_url})"


def _flower(settings: Settings, options: UpOptions) -> str:
    if not options.flower:
        return "off (--no-flower)"
    url = _http(settings.flower_address, settings.flower_port)
    if settings.flower_basic_auth is not None:
        return f"{url}  (log in with a user:password pair from FLOWER_BASIC_AUTH)"
    if not flower_guard.is_loopback(settings.flower_address):
        # Only reachable with FLOWER_ALLOW_UNAUTHENTICATED (the plan refuses otherwise).
        return (
            f"{url}  (NO LOGIN beyond this machine: FLOWER_ALLOW_UNAUTHENTICATED is set, so "
            "anyone who reaches it controls the workers)"
        )
    return f"{url}  (no login: FLOWER_BASIC_AUTH is not set, so it listens on this machine only)"


def _api(settings: Settings, options: UpOptions) -> str:
    if not options.api:
        return "off (--no-api)"
    if not settings.api_port:
        return "off (API_PORT=0)"
    url = _http(settings.api_host, settings.api_port)
    admin = "" if settings.api_admin_key else "; no admin routes: API_ADMIN_KEY is not set"
    return f"{url}/v1  (OpenAPI {url}/docs; docs/API.md{admin})"


def _metrics(settings: Settings, options: UpOptions) -> str:
    parts = []
    if settings.worker_metrics_port:
        parts.append(
            "worker "
            + _http(settings.worker_metrics_host, settings.worker_metrics_port, "/metrics")
        )
    for name, port in ingester_health_ports(settings, options).items():
        parts.append(f"{name} " + _http(settings.ingester_health_host, port, "/metrics"))
    if runs_api(settings, options):
        parts.append("api " + _http(settings.api_host, settings.api_port, "/metrics"))
    return ", ".join(parts) if parts else "off (WORKER_METRICS_PORT=0, INGESTER_HEALTH_PORT=0)"


def _health(settings: Settings, options: UpOptions) -> str:
    parts = [
        f"{name} {_http(settings.ingester_health_host, port)}/healthz and /readyz"
        for name, port in ingester_health_ports(settings, options).items()
    ]
    return "; ".join([*parts, "`hyperwatch health` for everything"])


def _redis(settings: Settings) -> str:
    if settings.effective_broker_url == settings.redis_url:
        return f"{redact_url(settings.redis_url)}  (broker and cache)"
    return (
        f"{redact_url(settings.effective_broker_url)} (broker), "
        f"{redact_url(settings.redis_url)} (cache)"
    )


def summary_lines(settings: Settings, options: UpOptions) -> list[str]:
    """One block: what runs, every address, where data lives, how to stop."""
    rows = [
        ("Flower", _flower(settings, options)),
        ("API", _api(settings, options)),
        ("metrics", _metrics(settings, options)),
        ("health", _health(settings, options)),
        ("database", redact_url(settings.database_url)),
        ("Redis", _redis(settings)),
        ("data dir", str(settings.data_dir)),
        ("logs", "state changes and problems; LOG_LEVEL=DEBUG shows every task"),
    ]
    return [
        f"hyperwatch is up, following {_feed(settings, options)}",
        *(f"  {name:<9} {value}" for name, value in rows),
        "Ctrl-C to stop (everything drains; a second Ctrl-C kills).",
    ]
