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
