"""``hyperwatch api``: serve the subscriber API with uvicorn (``--workers N`` processes).

SIGTERM or Ctrl-C: uvicorn stops accepting, finishes the requests in flight (up to
:data:`GRACE_S`) and exits 0; with several workers the main process passes the signal on
and waits for them. A bad setting exits 2 before anything listens. Per-request access
lines are DEBUG (``runtime.observability``).
"""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click
import uvicorn

from runtime.metrics_export import enable_multiprocess
from runtime.observability import configure_logging
from workers.context import UsageError, current_settings

log = logging.getLogger(__name__)

GRACE_S = 20  # below the 30 s every deployment file gives the process to stop


def _drained(signum: int, frame: FrameType | None) -> None:
    """uvicorn drains on SIGTERM/SIGINT, then raises the signal again to end the process
    the default way (status -15). Here that second delivery ends it with 0: it stopped as
    asked, which is what the supervisor and orchestrators should see."""
    raise SystemExit(0)


@click.command("api")
@click.option("--host", default=None, help="Bind address (default API_HOST).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Port (default API_PORT)."
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Processes (default API_WORKERS)."
)
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the subscriber HTTP API (/v1, OpenAPI at /openapi.json, /healthz, /readyz, /metrics)."""
    settings = current_settings()
    configure_logging(settings, "api")
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    if port == 0:
        raise UsageError("the API has no port: set API_PORT or --port")
    # Every worker writes its samples here and /metrics merges them (workers.api.observe);
    # one directory per port, so two APIs on one host never wipe each other's files.
    enable_multiprocess(settings.data_dir / "prometheus" / f"api-{port}")
    log.info(
        "hyperwatch api on http://%s:%d (%d worker(s))", host, port, workers or settings.api_workers
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _drained)
    uvicorn.run(
        "workers.api.app:app_factory",
        factory=True,
        host=host,
        port=port,
        workers=workers or settings.api_workers,
        log_config=None,  # the process's own logging (configure_logging), not uvicorn's
        server_header=False,
        timeout_graceful_shutdown=GRACE_S,
    )
