"""The Grafana dashboard in deploy/grafana: valid JSON, and every series it queries is one the node exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from eucaim_node.telemetry import metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "eucaim-node.json"
#: Suffixes Prometheus adds to a family's samples.
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def exported_series() -> dict[str, set[str]]:
    """Series name -> label names, for every eucaim_* family of the node's registry."""
    series = {}
    for family in metrics.REGISTRY.collect():
        if not family.name.startswith("eucaim_"):
            continue
        metric = metrics.REGISTRY._names_to_collectors[family.name if family.type != "counter" else family.name + "_total"]
        labels = set(metric._labelnames) | ({"le"} if family.type == "histogram" else set())
        for suffix in SUFFIXES[family.type]:
            series[family.name + suffix] = labels
    return series


def queries(dashboard: dict) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", ())]


def test_every_query_uses_exported_series_and_labels():
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_series()
    used = set()
    for title, expr in queries(dashboard):
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), title
        names = set(re.findall(r"\b(eucaim_[a-z_]+)\b", expr))
        assert names, f"{title}: queries no eucaim metric"
        for name in names:
            assert name in exported, f"{title}: {name} is not exported by the node"
            used.add(name)
            for selector in re.findall(rf"{name}\{{([^}}]*)\}}", expr):
                for label in re.findall(r"(\w+)\s*=~?", selector):
                    assert label in exported[name], f"{title}: {name} has no label {label}"
        for group in re.findall(r"by \(([^)]*)\)", expr):
            labels = {g.strip() for g in group.split(",")}
            assert any(labels <= exported[n] for n in names), f"{title}: grouping by {labels}"
    # Throughput, lag, errors and quarantine, per service: what the issue asks the dashboard to show.
    assert {"eucaim_events_handled_total", "eucaim_consumer_lag", "eucaim_events_failed_total",
            "eucaim_events_dead_lettered_total", "eucaim_instances_quarantined_total",
            "eucaim_instances_phi_guard_blocked_total", "eucaim_event_handling_seconds_bucket"} <= used


def test_the_dashboard_is_importable():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "eucaim-node" and dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "service"}
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
