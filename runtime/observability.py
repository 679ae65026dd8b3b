"""Sentry for every process, with secrets scrubbed before anything leaves; logging setup.

Logging: :func:`quiet_routine_records` keeps per-task and per-request lines at DEBUG in
every process, so the default level shows state changes and problems.

``init_sentry(settings, process)`` is called once per process type: the Celery worker's
main process (``celeryd_init``; pool children inherit it through fork and the SDK restarts
its transport thread per pid), beat (``beat_init``, which is what turns beat entries into
Sentry Crons monitors), and the ingester / any other ``hyperwatch`` process at start.
Without ``SENTRY_DSN`` it does nothing.

What never reaches Sentry (``send_default_pii`` off, local variables off, and
:class:`Scrubber` as ``before_send``/``before_breadcrumb``/``before_send_transaction``):

- values under keys that name a secret (password, secret, token, api key, authorization,
  cookie, signature, dsn, credentials, basic auth …), at any depth;
- credentials in URLs (``scheme://user:pass@`` → ``scheme://[Filtered]@``), webhook URLs
  whose path is the secret (Slack, Discord, Telegram bot tokens), ``key=value`` pairs
  with a secret-like key in free text, ``Bearer``/``Basic`` authorization values;
- subscribers' API keys (``hw_<prefix>_<secret>``: the secret part);
- the exact values of the secrets this process was configured with (the DSN, Flower's
  passwords, the API's admin key, passwords in the database / Redis / broker URLs);
- Celery task arguments (``extra["celery-job"]``): batches are market data, never needed to
  understand an error, and may carry wallet addresses;
- the path and query of outgoing HTTP requests (``http.client`` spans, ``http``
  breadcrumbs): a delivery's URL is often its credential (:func:`outbound_url`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from settings import Settings, url_secrets

log = logging.getLogger(__name__)

# Beat entries that run more often than once a minute (see beat_schedule.py).
SUB_MINUTE_BEAT_ENTRIES = ["health-snapshot", "outbox-sweep", "alerts-tick", "poll-positions"]

ProcessKind = Literal[
    "worker", "beat", "flower", "ingester", "simulator", "supervisor", "cli", "api"
]

FILTERED: Final = "[Filtered]"

_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key|"
    r"authorization|^auth$|basic[-_]?auth|cookie|csrf|signature|^sig$|dsn|credential",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/\s@:]*(?::[^/\s@]*)?@", re.I)
_SECRET_PATH_URLS = (
    # The path *is* the credential for these webhook styles.
    re.compile(r"(?P<keep>hooks\.slack\.com/services/)[^\s\"'<>]+", re.I),
    re.compile(r"(?P<keep>discord(?:app)?\.com/api/webhooks/\d+/)[^\s\"'<>/?]+", re.I),
    re.compile(r"(?P<keep>/bot)\d+:[A-Za-z0-9_-]+", re.I),
)
_KEY_VALUE = re.compile(
    r"(?P<key>\b(?:[a-z0-9]+[-_])*(?:pass(?:word|wd)?|pwd|secret|token|api[-_]?key|"
    r"access[-_]?key|signature|sig|dsn|auth)\b['\"]?\s*[=:]\s*['\"]?)(?P<value>[^\s&,;'\"})\]]+)",
    re.I,
)
# A subscriber's API key (domain.access.api_keys): its public prefix is kept, so an event
# still says which key was involved.
_API_KEY = re.compile(r"\b(?P<keep>hw_[0-9a-f]{12}_)[A-Za-z0-9_-]+")
_AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.I)
_MAX_DEPTH = 24
_MIN_SECRET_LEN = 6  # shorter "secrets" would redact ordinary words


class Scrubber:
    """Removes secrets from Sentry events, breadcrumbs and transactions."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        secrets = sorted({s for s in known_secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len)
        self._known = tuple(reversed(secrets))  # longest first: a DSN before its key

    def text(self, value: str) -> str:
        for secret in self._known:
            if secret in value:
                value = value.replace(secret, FILTERED)
        value = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{FILTERED}@", value)
        for pattern in _SECRET_PATH_URLS:
            value = pattern.sub(lambda m: f"{m['keep']}{FILTERED}", value)
        value = _API_KEY.sub(lambda m: f"{m['keep']}{FILTERED}", value)
        value = _AUTH_SCHEME.sub(lambda m: f"{m['scheme']} {FILTERED}", value)
        return _KEY_VALUE.sub(lambda m: f"{m['key']}{FILTERED}", value)

    def value(self, obj: Any, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            return FILTERED
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {
                key: (
                    FILTERED
                    if isinstance(key, str) and _SENSITIVE_KEY.search(key) and obj[key] is not None
                    else self.value(obj[key], depth + 1)
                )
                for key in obj
            }
        if isinstance(obj, list | tuple):
            return [self.value(item, depth + 1) for item in obj]
        return obj

    def event(self, event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
        """``before_send``: the whole event, recursively; task arguments dropped."""
        extra = event.get("extra")
        if isinstance(extra, dict) and isinstance(extra.get("celery-job"), dict):
            job = dict(extra["celery-job"])
            job["args"] = job["kwargs"] = FILTERED
            extra["celery-job"] = job
        for span in event.get("spans") or ():
            if isinstance(span, dict) and str(span.get("op", "")).startswith("http.client"):
                _outbound(span, "description")
        request = event.get("request")
        if isinstance(request, dict):
            for name in ("data", "cookies", "env"):
                if name in request:
                    request[name] = FILTERED
        scrubbed: dict[str, Any] = self.value(event)
        return scrubbed

    def breadcrumb(
        self, crumb: dict[str, Any], hint: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if crumb.get("type") == "http" or crumb.get("category") == "httplib":
            _outbound(crumb, "message")
        scrubbed: dict[str, Any] = self.value(crumb)
        return scrubbed


def outbound_url(url: str) -> str:
    """An outgoing request's URL as telemetry may show it: scheme and host only. The path
    and query of a delivery are often the credential itself (a Slack or Discord webhook, a
    Telegram bot token, a receiver's own token), whatever the host."""
    match = re.match(r"^(?P<base>[a-z][a-z0-9+.-]*://[^/?#\s]*)(?P<rest>\S*)", url, re.I)
    if match is None:
        return url
    base = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{FILTERED}@", match["base"])
    return f"{base}/{FILTERED}" if match["rest"] not in ("", "/") else base


def _outbound(item: dict[str, Any], text_key: str) -> None:
    """Cut the URLs of an HTTP client span or breadcrumb to their host, in place."""
    text = item.get(text_key)
    if isinstance(text, str):
        item[text_key] = " ".join(outbound_url(part) for part in text.split(" "))
    data = item.get("data")
    if isinstance(data, dict):
        if isinstance(data.get("url"), str):
            data["url"] = outbound_url(data["url"])
        for key in ("http.query", "http.fragment"):
            if data.get(key):
                data[key] = FILTERED


def known_secrets(settings: Settings) -> list[str]:
    """Every secret value this process was configured with (for exact-match redaction)."""
    from sqlalchemy.engine import make_url

    out: list[str] = []
    if settings.sentry_dsn is not None:
        dsn = settings.sentry_dsn.get_secret_value()
        out.append(dsn)
        out.extend(m.group(0) for m in re.finditer(r"(?<=://)[^@/]+(?=@)", dsn))
    if settings.flower_basic_auth is not None:
        for pair in settings.flower_basic_auth.get_secret_value().split(","):
            out.append(pair.partition(":")[2])
    if settings.api_admin_key is not None:
        out.append(settings.api_admin_key.get_secret_value())
    if settings.channel_secret_keys is not None:
        keys = settings.channel_secret_keys.get_secret_value().split(",")
        out.extend(k.strip() for k in keys if k.strip())
    for url in (settings.database_url, settings.redis_url, settings.broker_url or ""):
        out.extend(url_secrets(url))  # the password, and ?password= in the query string
        match = re.match(r"^[a-z][a-z0-9+.-]*://[^/@:]*:([^@/]+)@", url, re.I)
        if match:
            out.append(match.group(1))
            try:
                password = make_url(url).password
            except Exception:  # noqa: S112 - a URL SQLAlchemy cannot parse has no other form
                continue
            if password:
                out.append(str(password))
    return out


_initialized_for: str | None = None


def init_sentry(settings: Settings, process: ProcessKind) -> bool:
    """Initialise Sentry for this process when ``SENTRY_DSN`` is set; True if it is on.

    Idempotent per process: a second call (e.g. both ``celeryd_init`` and an embedded
    beat) keeps the first initialisation.
    """
    global _initialized_for
    if settings.sentry_dsn is None:
        return False
    if _initialized_for is not None:
        return True
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    from runtime import lifecycle

    scrubber = Scrubber(known_secrets(settings))
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.sentry_environment,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(
            denylist=[*DEFAULT_DENYLIST, "dsn", "webhook_secret", "signing_secret", "basic_auth"],
            recursive=True,
        ),
        before_send=scrubber.event,  # type: ignore[arg-type]
        before_send_transaction=scrubber.event,  # type: ignore[arg-type]
        before_breadcrumb=scrubber.breadcrumb,
        integrations=[
            # Beat entries become Crons monitors; the worker reports their outcome.
            CeleryIntegration(
                monitor_beat_tasks=True,
                # Sentry Crons takes whole minutes only; these run every few seconds.
                exclude_beat_tasks=SUB_MINUTE_BEAT_ENTRIES,
            ),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
    )
    sentry_sdk.set_tag("process", process)
    _initialized_for = process
    # Pool children exit with os._exit (no atexit): flush what they queued.
    lifecycle.register("sentry", _flush_sentry)
    log.info("Sentry enabled for %s (environment %s)", process, settings.sentry_environment)
    return True


def _flush_sentry() -> None:
    import sentry_sdk

    sentry_sdk.flush(timeout=2.0)


# --- routine records ------------------------------------------------------------------------
# Lines that say "one more of the usual happened", once per message, schedule tick or HTTP
# request: at the default level (INFO) they drown what matters (37 lines a second under
# `hyperwatch up`), so they are demoted to DEBUG. State changes and problems keep their
# level: a task's failure or retry, a worker's "ready", a lost connection. Keyed by logger,
# matched on the unformatted message's start; the Celery texts are pinned against Celery's
# own constants by a unit test.
ROUTINE_MESSAGES: Final[dict[str, tuple[str, ...]]] = {
    # Each task a worker takes off the queue (celery.app.trace.LOG_RECEIVED) …
    "celery.worker.strategy": ("Task %(name)s[%(id)s] received",),
    # … and each that returned (LOG_SUCCESS). Failures and retries are other messages.
    "celery.app.trace": ("Task %(name)s[%(id)s] succeeded in",),
    # Beat, for every entry it sends (every 5 s for the alerts tick).
    "celery.beat": ("Scheduler: Sending due task",),
    # Every HTTP request (the ingester's position polls, the worker's, deliveries); the
    # callers log failures themselves.
    "httpx": ("HTTP Request:",),
    # Every request the API answers (uvicorn's access line); the API counts them by route.
    "uvicorn.access": ('%s - "%s %s HTTP/%s" %d',),
}


class RoutineRecords(logging.Filter):
    """Demotes routine INFO records to DEBUG; drops them unless DEBUG is on.

    "On" is the root logger's level, which ``--loglevel`` (Celery) or ``LOG_LEVEL`` (every
    other process) sets, so ``LOG_LEVEL=DEBUG`` shows every task again, marked DEBUG.
    """

    def __init__(self, prefixes: tuple[str, ...]) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not isinstance(record.msg, str):
            return True
        if not record.msg.startswith(self.prefixes):
            return True
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


def quiet_routine_records() -> None:
    """Install :class:`RoutineRecords` on the loggers of :data:`ROUTINE_MESSAGES` (idempotent).

    Called by every process at start (``tasks.application.create_app`` for the Celery ones,
    :func:`configure_logging` and the ingester for the rest); a forked pool child inherits it.
    """
    for name, prefixes in ROUTINE_MESSAGES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, RoutineRecords) for f in logger.filters):
            logger.addFilter(RoutineRecords(prefixes))


def configure_logging(settings: Settings, process: ProcessKind) -> None:
    """Root logging for non-Celery processes (Celery configures its own from ``--loglevel``).

    One stderr handler, one line per record, the process kind in every line.
    """
    root = logging.getLogger()
    if any(getattr(h, "_hyperwatch", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {process}[%(process)d] %(name)s: %(message)s")
    )
    handler._hyperwatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    quiet_routine_records()
