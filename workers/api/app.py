"""The API application: routes, the error shape, probes and metrics.

``create_app(settings)`` builds it; ``app_factory()`` is what uvicorn calls in each worker
process (``hyperwatch api``): it loads the settings from the environment, configures
logging and Sentry for the process, then builds the app.

Probes, like the other processes': ``/healthz`` 200 while the process serves requests (a
hung process stops answering); ``/readyz`` 200 when the database and Redis answer, 503
naming the one that does not (not ready is not dead: do not restart on it).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.observability import configure_logging, init_sentry
from settings import Settings, load_settings
from workers.api.errors import ApiError, ErrorBody, ErrorDetail
from workers.api.observe import BodyLimit, Observed, access_lines_without_queries, exposition
from workers.api.routes import account, admin, alerts, channels, notifications, wallets
from workers.api.services import Services

log = logging.getLogger(__name__)

VERSION = "1"


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    return JSONResponse(body.model_dump(), status_code=status)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body.model_dump(), status_code=exc.status, headers=exc.headers)


async def _invalid(request: Request, exc: Exception) -> Response:
    """Pydantic's refusal as the API's one error shape: the first problem, its field."""
    assert isinstance(exc, RequestValidationError)
    first: dict[str, Any] = dict(exc.errors()[0]) if exc.errors() else {}
    where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(where) or None
    message = str(first.get("msg", "invalid request"))
    if first.get("loc") == ("body",) and first.get("type") in (
        "model_attributes_type",
        "dict_type",
    ):
        message = "the body must be a JSON object (Content-Type: application/json)"
    elif first.get("type") == "extra_forbidden":
        message = "unknown field"
    elif first.get("type") == "json_invalid":
        message, field = "the body is not valid JSON", None
    return _error(422, "invalid", f"{field}: {message}" if field else message, field)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not read the body (not UTF-8 JSON)
        return _error(422, "invalid", "the body is not valid JSON")
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse(
        ErrorBody(error=ErrorDetail(code=code, message=message)).model_dump(),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _crash(request: Request, exc: Exception) -> Response:
    # Logged with the route template only (never the path, a header or the body); Sentry
    # gets the exception through the logging integration, scrubbed.
    log.error(
        "unhandled error on %s", getattr(request.scope.get("route"), "path", "?"), exc_info=exc
    )
    return _error(500, "internal", "internal error; it was logged")


def create_app(settings: Settings, clock: Clock = SYSTEM_CLOCK) -> FastAPI:
    services = Services.build(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="hyperwatch API",
        version=VERSION,
        description="Manage your hyperwatch alerts, channels and tracked wallets; read your "
        "notifications, tier, quotas and usage. Authenticate with `Authorization: Bearer "
        '<your API key>`. Errors are `{"error": {"code", "message", "field"}}`.',
        lifespan=lifespan,
    )
    app.state.services = services
    for router in (
        alerts.router,
        channels.router,
        wallets.router,
        notifications.router,
        account.router,
        admin.router,
    ):
        app.include_router(router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _crash)
    _probes(app, services)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(Observed, metrics=services.metrics)
    return app


def _probes(app: FastAPI, services: Services) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        checks = {
            "database": _answers(services.database.ping),
            "redis": _answers(services.redis.ping),
        }
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "fail", **checks}, status_code=200 if ready else 503
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body, content_type = exposition(services.metrics)
        return Response(body, media_type=content_type)


def _answers(ping: Any) -> bool:
    try:
        ping()
    except Exception as exc:  # any failure to answer is "not ready", named by type in the log
        log.warning("readiness: %s", type(exc).__name__)
        return False
    return True


def app_factory() -> FastAPI:
    """uvicorn's factory, called once in every worker process."""
    settings = load_settings()
    configure_logging(settings, "api")
    access_lines_without_queries()
    init_sentry(settings, "api")
    return create_app(settings)
