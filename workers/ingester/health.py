"""The ingester's own HTTP probes: ``/healthz``, ``/readyz`` and ``/metrics``.

- ``/healthz`` 200 while the socket loop moves (it wakes at least every 0.25 s, also while
  backing off); 503 when it has not moved for ``LIVENESS_S`` — a hung process to restart.
- ``/readyz`` 200 when connected, every subscription acknowledged, and the broker and
  cache Redis reachable; 503 otherwise, with the failing parts named. Not ready is not
  dead: during an exchange or Redis outage the process is doing its job (buffering,
  reconnecting) and must not be restarted. Ready but not whole — a stream gone silent on
  a live socket, being resubscribed — is ``"status": "degraded"`` with the detail listed
  (``silent_streams``), still 200: the rest of the feed is flowing.
- ``/metrics`` the Prometheus text of the ingester's registry.

A stdlib threading server on a daemon thread; handlers only read flags and counters.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

LIVENESS_S = 10.0


@dataclass(frozen=True)
class Probe:
    """What the probes look at, as callables so they always read the current state."""

    loop_age_s: Callable[[], float]
    checks: Callable[[], dict[str, bool]]
    # Detail shown on /readyz; any truthy value makes the status "degraded" (still 200).
    degraded: Callable[[], dict[str, Any]] = field(default=lambda: {})


class HealthServer:
    def __init__(self, host: str, port: int, probe: Probe, registry: CollectorRegistry) -> None:
        handler = _handler(probe, registry)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ingest-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(probe: Probe, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                age = probe.loop_age_s()
                self._json(age < LIVENESS_S, {"loop_age_s": round(age, 3)})
            elif path == "/readyz":
                checks = probe.checks()
                detail = probe.degraded()
                ready = all(checks.values())
                status = "degraded" if ready and any(detail.values()) else None
                self._json(ready, {**checks, **detail}, status)
            elif path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found\n", "text/plain")

        def _json(self, ok: bool, detail: Mapping[str, object], status: str | None = None) -> None:
            body = json.dumps({"status": status or ("ok" if ok else "fail"), **detail}).encode()
            self._send(200 if ok else 503, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("health %s", format % args)

    return Handler
