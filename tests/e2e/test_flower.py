"""``celery -A tasks flower`` from the checkout, against a live worker on the private Redis."""

# ruff: noqa: F811 - pytest fixtures imported from the shared module are parameters here

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.celery.fixtures import (  # noqa: F401 - fixtures
    celery_settings,
    spawn_worker,
    worker_env,
)
from tests.integration.celery.support import CELERY, REPO, WorkerProcess, wait_until
from tests.support.services import free_port, wait_for_port

pytestmark = pytest.mark.e2e


@pytest.fixture()
def flower_factory(
    worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> subprocess.Popen[bytes]:
        env = {**worker_env, **{k.upper(): v for k, v in settings.items()}}
        log = (tmp_path / f"flower-{len(started)}.log").open("wb")
        # cwd is the checkout: Flower reads ./flowerconfig.py by default.
        process = subprocess.Popen(
            [CELERY, "-A", "tasks", "flower"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()  # no state to save; its graceful stop waits out inspect timeouts
            process.wait(10)


def test_flower_requires_credentials_for_the_api_and_serves_metrics(
    spawn_worker: Callable[..., WorkerProcess],
    flower_factory: Callable[..., subprocess.Popen[bytes]],
) -> None:
    # Given a live worker and Flower with basic auth from the settings
    worker = spawn_worker(name="flowered").wait_ready()
    port = free_port()
    flower_factory(
        flower_basic_auth="ops:s3cret-pass-7f3c9e",
        flower_address="127.0.0.1",
        flower_port=str(port),
    )
    wait_for_port(port, timeout=30)
    base = f"http://127.0.0.1:{port}"

    # When the API is called without credentials; Then 401
    assert httpx.get(f"{base}/api/workers", timeout=10).status_code == 401
    assert httpx.get(f"{base}/api/workers", auth=("ops", "wrong"), timeout=10).status_code == 401

    # When called with them; Then 200 and the live worker is listed
    def workers() -> dict:
        response = httpx.get(f"{base}/api/workers", auth=("ops", "s3cret-pass-7f3c9e"), timeout=10)
        assert response.status_code == 200
        return response.json()

    listed = wait_until(
        lambda: [name for name in workers() if name.startswith("flowered@")], 30, interval=0.5
    )
    assert len(listed) == 1

    # And /metrics is Prometheus text that parses, with the worker online
    def online() -> bool:
        text = httpx.get(f"{base}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            if family.name == "flower_worker_online":
                return any(
                    s.labels.get("worker") == listed[0] and s.value == 1 for s in family.samples
                )
        return False

    wait_until(online, 30, interval=0.5, what="flower_worker_online for the worker")
    assert worker.process.poll() is None


def test_flower_refuses_to_listen_beyond_localhost_without_credentials(
    flower_factory: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # Given no FLOWER_BASIC_AUTH and every interface; When Flower starts
    process = flower_factory(flower_address="0.0.0.0", flower_port=str(free_port()))

    # Then it exits 2 with one line naming the problem
    assert process.wait(30) == 2
    output = (tmp_path / "flower-0.log").read_text().strip().splitlines()
    assert output[-1].startswith("hyperwatch flower: refusing to serve on 0.0.0.0:")
    assert "FLOWER_BASIC_AUTH" in output[-1]


def test_flower_without_credentials_starts_on_localhost_only(
    flower_factory: Callable[..., subprocess.Popen[bytes]],
) -> None:
    # Given no credentials but a loopback address; When Flower starts
    port = free_port()
    process = flower_factory(flower_address="127.0.0.1", flower_port=str(port))

    # Then it serves (its health check answers) on this machine
    wait_for_port(port, timeout=30)
    assert httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=10).status_code == 200
    assert process.poll() is None


def test_flower_refuses_a_trivially_weak_password_even_on_localhost(
    flower_factory: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # Given a short password; When Flower starts on loopback
    process = flower_factory(
        flower_basic_auth="ops:s3cret-pass",
        flower_address="127.0.0.1",
        flower_port=str(free_port()),
    )

    # Then it exits 2 with one line naming the user, never the password
    assert process.wait(30) == 2
    output = (tmp_path / "flower-0.log").read_text()
    last = output.strip().splitlines()[-1]
    assert last.startswith("hyperwatch flower: FLOWER_BASIC_AUTH: the password of user 'ops'")
    assert "s3cret-pass" not in output


def test_flower_opted_out_of_credentials_serves_everywhere_and_warns(
    flower_factory: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # Given the explicit opt-out; When Flower starts on every interface
    port = free_port()
    process = flower_factory(
        flower_address="0.0.0.0", flower_port=str(port), flower_allow_unauthenticated="true"
    )

    # Then it serves, and said loudly that it has no authentication
    wait_for_port(port, timeout=30)
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200  # the UI, no login
    assert process.poll() is None
    output = (tmp_path / "flower-0.log").read_text()
    assert "hyperwatch flower: WARNING: serving on 0.0.0.0:" in output
    assert "WITHOUT AUTHENTICATION" in output
