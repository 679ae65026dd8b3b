"""Shared readers for the deployment files (they live at the repository root and deploy/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from settings import Settings

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
SYSTEMD = ROOT / "deploy" / "systemd"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"

# Variables the processes read that are not hyperwatch Settings: billiard's signal remap,
# the entrypoint's worker/simulator knobs, and Python's own.
PROCESS_VARIABLES = {
    "REMAP_SIGTERM",
    "WORKER_QUEUES",
    "WORKER_CONCURRENCY",
    "SIM_PORT",
    "SIM_USERS",
    "PYTHONUNBUFFERED",
}


def soft_shutdown_default_s() -> float:
    default = Settings.model_fields["worker_soft_shutdown_timeout_s"].default
    assert isinstance(default, float)
    return default


def settings_variables() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    data = load_yaml(ROOT / "docker-compose.yml")
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def k8s_documents() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), path
            doc["__file__"] = path.name
            docs.append(doc)
    return docs
