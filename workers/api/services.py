"""What the API's routes share in one process: settings, database, Redis, metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import redis
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session
from starlette.requests import Request

from domain.alerts.book import announce
from domain.alerts.manage import Refused
from models.db import Database, get_database
from models.secret_box import SecretUnavailable
from runtime.clock import SYSTEM_CLOCK, Clock
from runtime.metrics import (
    API_AUTH_FAILURES,
    API_LATENCY,
    API_RATE_LIMITED,
    API_REQUESTS,
    MetricDef,
    Metrics,
)
from runtime.rate_limit import RateLimiter
from runtime.redis_clients import cache_redis
from settings import Settings
from workers.api.errors import ApiError, from_refusal

log = logging.getLogger(__name__)

API_DEFS: tuple[MetricDef, ...] = (API_REQUESTS, API_LATENCY, API_RATE_LIMITED, API_AUTH_FAILURES)


@dataclass
class Services:
    settings: Settings
    database: Database
    redis: redis.Redis
    limiter: RateLimiter
    metrics: Metrics
    http: httpx.Client
    clock: Clock = SYSTEM_CLOCK

    @classmethod
    def build(cls, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> Services:
        client = cache_redis(settings, timeout_s=3.0)
        return cls(
            settings=settings,
            database=get_database(settings),
            redis=client,
            limiter=RateLimiter(client, clock),
            metrics=Metrics(API_DEFS),
            # Test sends: redirects are never followed (the SSRF guard checked one address).
            http=httpx.Client(timeout=settings.notify_timeout_s, follow_redirects=False),
            clock=clock,
        )

    @contextmanager
    def unit_of_work(self, conflict: str | None = None) -> Iterator[Session]:
        """One transaction, committed when the block ends; any error rolls it back, so
        nothing is half-created. Refusals become their API errors; a unique key a
        concurrent request took first is 409 (``conflict`` says which, when the caller
        knows); a database that cannot be reached is 503."""
        try:
            with self.database.session() as session:
                yield session
        except Refused as exc:
            raise from_refusal(exc) from None
        except IntegrityError:
            message = conflict or "a concurrent request changed the same object first; retry"
            raise ApiError(409, "conflict", message) from None
        except DataError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise ApiError(422, "invalid", f"the database refused a value ({reason})") from None
        except (OperationalError, ProgrammingError, SecretUnavailable) as exc:
            log.warning("database unusable: %s", type(exc).__name__)
            raise ApiError(503, "unavailable", "the database is unavailable; retry") from None

    def announce(self, alert_ids: Sequence[int]) -> None:
        """Tell the alert workers (after the commit). Redis gone meanwhile: the workers'
        periodic catch-up finds the change within about two minutes."""
        try:
            announce(self.redis, alert_ids)
        except (redis.RedisError, OSError) as exc:
            log.warning("alert change saved, workers not notified: %s", type(exc).__name__)

    def close(self) -> None:
        self.http.close()
        self.redis.close()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
