"""One ``hyperwatch api`` process for the API tests, on the session's PostgreSQL and Redis.

Tier settings are small so quotas and the rate limit are reached in a few requests: the
free tier has 2 alerts, 1 wallet and 20 requests a minute. Loopback webhooks are allowed
(the test receivers listen there); the SSRF tests use addresses no allowlist opens.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from models.db import Database
from runtime import keys
from tests.support.api import ApiClient, ApiProcess
from tests.support.services import RedisServer

FREE_REQUESTS_PER_MINUTE = 20


@pytest.fixture(scope="session")
def api_process(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_server: RedisServer,
    _pg_database: Database,
) -> Iterator[ApiProcess]:  # fmt: skip
    workdir = tmp_path_factory.mktemp("api")
    process = ApiProcess(
        workdir,
        database_url=postgres_url,
        redis_url=redis_server.url,
        webhook_allowlist="127.0.0.0/8",
        tier_free_max_alerts=2,
        tier_free_max_wallets=1,
        tier_free_api_requests_per_minute=FREE_REQUESTS_PER_MINUTE,
        hl_info_url="http://127.0.0.1:9/info",  # never asked: the tests put coins in Redis
    )
    try:
        yield process.wait_ready()
    finally:
        process.stop()


@pytest.fixture()
def api(api_process: ApiProcess, pg_database: Database, redis_url: str) -> Iterator[ApiClient]:
    """A client of the running API, on an empty database and Redis that knows BTC and ETH."""
    client = redis.Redis.from_url(redis_url)
    client.hset(keys.LATEST_MIDS.name(), mapping={"BTC": '{"px": "1"}', "ETH": '{"px": "1"}'})
    client.close()
    api_client = ApiClient(api_process.url)
    try:
        yield api_client
    finally:
        api_client.close()
