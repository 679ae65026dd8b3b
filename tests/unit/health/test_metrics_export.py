"""Every metric name is exported by some process; the worker declares its names up front."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from runtime.health import SNAPSHOT_DEFS
from runtime.metrics import ALL, QUEUE_DEPTH, WORKERS_ALIVE
from runtime.metrics_export import (
    POLL_GAUGE_DEFS,
    WORKER_DEFS,
    WorkerCollector,
    family_name,
    gauge_families,
)


def parse(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_every_listed_metric_is_exported_by_the_ingester_the_worker_or_the_api() -> None:
    # The ingester exports the hyperwatch_ingest_* names itself (its own /metrics test), the
    # API its hyperwatch_api_* (tests/integration/api/test_scoping_and_auth.py).
    from workers.api.services import API_DEFS

    worker_side = {d.name for d in (*WORKER_DEFS, *SNAPSHOT_DEFS, *POLL_GAUGE_DEFS, *API_DEFS)}
    unexported = [
        d.name
        for d in ALL
        if d.name not in worker_side and not d.name.startswith("hyperwatch_ingest_")
    ]
    assert unexported == []


def test_given_no_sample_yet_when_scraped_then_every_worker_name_is_declared(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(tmp_path))
    families = parse(generate_latest(registry).decode())
    assert {family_name(d) for d in WORKER_DEFS} <= set(families)


def test_given_snapshot_samples_when_rendered_then_labels_follow_the_definition() -> None:
    samples = [
        (QUEUE_DEPTH.name, 7.0, {"queue": "ingest"}),
        (WORKERS_ALIVE.name, 2.0, {}),
        ("not_a_listed_metric", 1.0, {}),
    ]
    registry = CollectorRegistry(auto_describe=False)

    class Fixed:
        def collect(self):
            return gauge_families(SNAPSHOT_DEFS, samples)

    registry.register(Fixed())
    families = parse(generate_latest(registry).decode())
    assert {d.name for d in SNAPSHOT_DEFS} <= set(families)
    assert "not_a_listed_metric" not in families
    depth = families[QUEUE_DEPTH.name][0]
    assert depth.labels == {"queue": "ingest"} and depth.value == 7.0
    assert families[WORKERS_ALIVE.name][0].value == 2.0


def test_counter_family_names_drop_the_total_suffix() -> None:
    assert family_name(WORKER_DEFS[0]) == "hyperwatch_rows_stored"
