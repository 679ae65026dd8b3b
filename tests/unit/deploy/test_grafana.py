"""The Grafana dashboard only queries metrics hyperwatch defines, and shows all of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from runtime import metrics
from tests.unit.deploy.conftest import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "hyperwatch-dashboard.json"
# Series prometheus_client derives from a histogram.
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in all_panels(dashboard) for t in p.get("targets", [])]


def referenced(dashboard: dict[str, Any]) -> set[str]:
    return {m for e in expressions(dashboard) for m in re.findall(r"\bhyperwatch_[a-z0-9_]+", e)}


def defined() -> dict[str, metrics.MetricDef]:
    return {d.name: d for d in metrics.ALL}


def test_given_the_dashboard_when_queried_then_every_series_is_a_defined_metric(
    dashboard: dict[str, Any],
) -> None:
    known = defined()
    for series in referenced(dashboard):
        base = series
        for suffix in HISTOGRAM_SUFFIXES:
            if series.endswith(suffix) and series.removesuffix(suffix) in known:
                base = series.removesuffix(suffix)
                assert known[base].type == "histogram", f"{series}: {base} is not a histogram"
        assert base in known, f"{series} is not in runtime/metrics.py"
        if base == series:
            assert known[base].type != "histogram", f"{series}: query _bucket/_sum/_count"


def test_given_the_metric_list_when_compared_then_the_dashboard_shows_every_metric(
    dashboard: dict[str, Any],
) -> None:
    shown = {
        re.sub(r"_(bucket|sum|count)$", "", s) if s.removesuffix("_total") == s else s
        for s in referenced(dashboard)
    }

    missing = set(defined()) - shown
    assert not missing, f"no panel for: {sorted(missing)}"


def test_given_counters_when_graphed_then_they_are_rated_never_plotted_raw(
    dashboard: dict[str, Any],
) -> None:
    counters = {d.name for d in metrics.ALL if d.type == "counter"}
    for expr in expressions(dashboard):
        for name in counters & set(re.findall(r"\bhyperwatch_[a-z0-9_]+", expr)):
            assert re.search(rf"(rate|increase)\({name}\b", expr), expr


def test_given_labels_when_grouped_then_they_exist_on_the_metric(
    dashboard: dict[str, Any],
) -> None:
    known = defined()
    for expr in expressions(dashboard):
        names = [
            re.sub(r"_(bucket|sum|count)$", "", n) if n not in known else n
            for n in re.findall(r"\bhyperwatch_[a-z0-9_]+", expr)
        ]
        labels = set(re.findall(r"by \(([^)]*)\)", expr))
        used = {label.strip() for group in labels for label in group.split(",")} - {"le"}
        allowed = {label for n in names for label in known[n].labels}
        assert used <= allowed, f"{expr}: {sorted(used - allowed)}"
        selectors = re.findall(r"\{([a-z_]+)=", expr)
        assert set(selectors) <= allowed, expr


def test_given_the_dashboard_when_imported_then_it_is_well_formed(
    dashboard: dict[str, Any],
) -> None:
    panels = list(all_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]
    variable = dashboard["templating"]["list"][0]
    assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
