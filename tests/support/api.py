"""``hyperwatch api`` as a real process on a spare port, and a small client for tests.

:class:`ApiProcess` starts ``python -m workers.cli api`` with the given settings and waits
for ``/readyz``; :class:`ApiClient` speaks to it over real HTTP: the admin key creates
subscribers and issues their keys exactly as an operator would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.integration.celery.support import service_env, wait_until
from tests.support.services import free_port
from tests.support.stack import terminate

ADMIN_KEY = "admin-" + "k3y" * 12


class ApiProcess:
    def __init__(self, workdir: Path, *, workers: int = 1, **settings: object) -> None:
        self.port = free_port()
        self.log_path = workdir / f"api-{self.port}.log"
        base: dict[str, object] = {
            "api_port": self.port,
            "api_admin_key": ADMIN_KEY,
            "api_workers": workers,
            "data_dir": workdir / "var",
            "log_level": "INFO",
        }
        self.env = service_env(None, **{**base, **settings})
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "api"],
            cwd=workdir, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"api exited {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 30.0) -> ApiProcess:
        wait_until(self.ready, timeout, what="api /readyz")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        returncode = terminate(self.process, timeout)
        self._log.close()
        return returncode


@dataclass
class Subscriber:
    user_id: int
    email: str
    key: str
    key_id: int

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=15)

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}", **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def subscriber(self, email: str, tier: str = "pro") -> Subscriber:
        user = self.admin("POST", "/v1/admin/users", json={"email": email, "tier": tier})
        assert user.status_code == 201, user.text
        user_id = user.json()["id"]
        key = self.admin("POST", f"/v1/admin/users/{user_id}/keys", json={"name": "test"})
        assert key.status_code == 201, key.text
        return Subscriber(user_id, email, key.json()["key"], key.json()["id"])

    def as_(self, who: Subscriber, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers: Mapping[str, str] = {**who.auth, **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=dict(headers), **kwargs)

    def close(self) -> None:
        self.http.close()
