"""Probes: liveness follows the loop, readiness names what is missing, metrics are served."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from runtime.metrics import FRAMES, Metrics
from workers.ingester.health import LIVENESS_S, HealthServer, Probe

state: dict[str, Any] = {
    "age": 0.1,
    "checks": {"connected": True, "subscribed": True, "broker": True, "cache": True},
    "silent": [],
}


@pytest.fixture()
def base() -> Iterator[str]:
    metrics = Metrics((FRAMES,))
    metrics.counter(FRAMES).labels("trades").inc(3)
    probe = Probe(
        loop_age_s=lambda: state["age"],
        checks=lambda: dict(state["checks"]),
        degraded=lambda: {"silent_streams": list(state["silent"])},
    )
    server = HealthServer("127.0.0.1", 0, probe, metrics.registry).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_healthz_follows_the_loop(base: str) -> None:
    state["age"] = 0.1
    assert httpx.get(f"{base}/healthz").status_code == 200
    state["age"] = LIVENESS_S + 1
    r = httpx.get(f"{base}/healthz")
    assert r.status_code == 503 and r.json()["status"] == "fail"
    state["age"] = 0.1


def test_readyz_names_the_failing_dependency(base: str) -> None:
    assert httpx.get(f"{base}/readyz").status_code == 200
    state["checks"]["broker"] = False
    r = httpx.get(f"{base}/readyz")
    assert r.status_code == 503 and r.json()["broker"] is False
    state["checks"]["broker"] = True


def test_readyz_reports_silent_streams_as_degraded_but_ready(base: str) -> None:
    r = httpx.get(f"{base}/readyz")
    assert r.json()["status"] == "ok" and r.json()["silent_streams"] == []
    state["silent"] = ["activeAssetCtx:ETH"]
    r = httpx.get(f"{base}/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "degraded"
    assert r.json()["silent_streams"] == ["activeAssetCtx:ETH"]
    state["checks"]["cache"] = False
    assert httpx.get(f"{base}/readyz").json()["status"] == "fail"
    state["checks"]["cache"] = True
    state["silent"] = []


def test_metrics_and_404(base: str) -> None:
    r = httpx.get(f"{base}/metrics")
    assert 'hyperwatch_ingest_frames_total{channel="trades"} 3.0' in r.text
    assert httpx.get(f"{base}/nope").status_code == 404
