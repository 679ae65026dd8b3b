"""``hyperwatch api`` as a command: a bad setting stops it before it listens (exit 2, the
variable named, never its value), and without API_ADMIN_KEY the operators' routes do not
exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from models.db import Database
from tests.integration.celery.support import service_env
from tests.support.api import ApiProcess
from tests.support.services import RedisServer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"api_admin_key": "too-short-a-key"}, "API_ADMIN_KEY"),
        ({"api_workers": "0"}, "API_WORKERS"),
        ({"api_port": "0"}, "the API has no port"),
    ],
)
def test_a_bad_setting_stops_the_api_before_it_listens(
    tmp_path: Path, settings: dict[str, str], named: str
) -> None:
    env = service_env(None, data_dir=tmp_path / "var", **settings)
    done = subprocess.run(
        [sys.executable, "-m", "workers.cli", "api"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and "too-short-a-key" not in done.stderr


def test_without_an_admin_key_the_admin_routes_do_not_exist(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer, _pg_database: Database
) -> None:
    process = ApiProcess(
        tmp_path, database_url=postgres_url, redis_url=redis_server.url, api_admin_key=None
    ).wait_ready()
    try:
        answer = httpx.get(f"{process.url}/v1/admin/users", headers={"Authorization": "Bearer x"})
        assert answer.status_code == 404
        assert "API_ADMIN_KEY is not set" in answer.json()["error"]["message"]
    finally:
        assert process.stop() == 0


def test_two_workers_share_one_metrics_page_and_stop_together_on_sigterm(
    tmp_path: Path, postgres_url: str, redis_server: RedisServer, _pg_database: Database
) -> None:
    # Given the API with two worker processes
    process = ApiProcess(
        tmp_path, workers=2, database_url=postgres_url, redis_url=redis_server.url
    ).wait_ready()
    try:
        # When requests are spread over them (fresh connections land on either)
        for _ in range(20):
            assert httpx.get(f"{process.url}/v1/me").status_code == 401

        # Then every worker's /metrics counts all of them
        for _ in range(3):
            text = httpx.get(f"{process.url}/metrics").text
            line = next(
                line for line in text.splitlines()
                if line.startswith('hyperwatch_api_requests_total{method="GET",route="/v1/me",status="401"}')
            )  # fmt: skip
            assert float(line.split()[-1]) == 20.0
    finally:
        # And SIGTERM stops the server and both workers, exit 0
        assert process.stop() == 0, process.log()
    assert process.log().count("Finished server process") == 2
