"""Request metrics, the body size limit and ``/metrics`` for the API.

:class:`Observed` is the outermost ASGI middleware: every request is counted and timed
under its *route template* (``/v1/alerts/{alert_id}``; ``unmatched`` for a path no route
has), never its raw path, so ids, addresses and anything a caller types never become label
values. :class:`BodyLimit` reads at most ``API_MAX_BODY_BYTES`` of a body and answers 413
beyond it, before any route parses it.

With several uvicorn workers, each process writes its samples under
``PROMETHEUS_MULTIPROC_DIR`` (``hyperwatch api`` sets it, emptied at start) and ``/metrics``
merges them, so every worker answers for all.
"""

from __future__ import annotations

import logging
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.metrics import API_LATENCY, API_REQUESTS, Metrics
from runtime.metrics_export import ENV_DIR
from workers.api.errors import ErrorBody, ErrorDetail

UNMATCHED = "unmatched"


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class Observed:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.requests = metrics.counter(API_REQUESTS)
        self.latency = metrics.histogram(API_LATENCY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route, method = route_of(scope), str(scope.get("method", ""))
            self.requests.labels(method, route, str(status)).inc()
            self.latency.labels(method, route).observe(time.perf_counter() - started)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        detail = ErrorDetail(
            code="body_too_large", message=f"the request body is larger than {self.max_bytes} bytes"
        )
        body = ErrorBody(error=detail).model_dump_json().encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def exposition(metrics: Metrics) -> tuple[bytes, str]:
    """The Prometheus text: every API process's samples when they share a directory."""
    path = os.environ.get(ENV_DIR)
    if path:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(metrics.registry), CONTENT_TYPE_LATEST


class PathOnly(logging.Filter):
    """uvicorn's access line without the query string: a client that puts its key in the
    URL (``?api_key=…``) must not get it written to the log. The line keeps ``?…`` so a
    reader knows there was one."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            path, query, _ = args[2].partition("?")
            record.args = (args[0], args[1], path + ("?…" if query else ""), args[3], args[4])
        return True


def access_lines_without_queries() -> None:
    """Install :class:`PathOnly` on uvicorn's access logger (idempotent)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, PathOnly) for f in logger.filters):
        logger.addFilter(PathOnly())
