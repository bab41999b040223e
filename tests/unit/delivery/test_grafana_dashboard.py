"""The Grafana dashboard: a sidecar-loadable ConfigMap, valid JSON, only real metrics."""

from __future__ import annotations

import json
import re
from typing import Any

import prometheus_client.metrics
import pytest

from tests.unit.delivery import support
from weather_operator.render import podlogs

MONITORING = support.MANIFESTS / "monitoring"
DASHBOARD = MONITORING / "dashboards" / "weather-proxy.json"
# Its SQL runs against a real PostgreSQL in tests/integration/proxy/test_usage_dashboard.py.
USAGE = MONITORING / "dashboards" / "weather-proxy-usage.json"


def exported_metrics() -> dict[str, set[str]]:
    """Series names the proxy exports, with their label names, from its own Metrics class."""
    module = pytest.importorskip("weather_proxy.observability.metrics")
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"]}
    found: dict[str, set[str]] = {}
    for collector in vars(module.Metrics()).values():
        if not isinstance(collector, prometheus_client.metrics.MetricWrapperBase):
            continue
        # prometheus_client has no public accessor for these; children (.labels()) add nothing.
        labels = set(collector._labelnames)
        for suffix in suffixes[str(collector._type)]:
            extra = {"le"} if suffix == "_bucket" else set()
            found[collector._name + suffix] = found.get(collector._name + suffix, set()) | labels | extra
    return found


METRICS = exported_metrics()
# Labels Prometheus adds to every scraped series (ServiceMonitor target labels).
TARGET_LABELS = {"namespace", "service", "pod", "job", "instance", "container", "endpoint"}
QUERY_LABELS = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SELECTOR = re.compile(r"(weather_proxy_\w+)\{([^}]*)\}")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_configmaps_are_labelled_for_the_grafana_sidecar() -> None:
    built = {cm["metadata"]["name"]: cm for cm in support.kustomize_build(MONITORING)}
    assert set(built) == {"weather-proxy-dashboard", "weather-proxy-usage-dashboard"}
    for name, file in (("weather-proxy-dashboard", DASHBOARD), ("weather-proxy-usage-dashboard", USAGE)):
        cm = built[name]
        assert cm["kind"] == "ConfigMap"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][file.name]) == json.loads(file.read_text())


def test_usage_dashboard_is_well_formed_and_covers_the_topics() -> None:
    usage = json.loads(USAGE.read_text())
    assert usage["uid"] == "weather-proxy-usage"
    ids = [p["id"] for p in usage["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in usage["templating"]["list"]}
    assert {"datasource", "top", "budget_per_hour", "budget_per_day"} <= variables
    kinds = {p["type"] for p in usage["panels"]}
    assert {"geomap", "table", "timeseries"} <= kinds
    titles = " ".join(p["title"].lower() for p in usage["panels"])
    topics = ("most requested cities", "by location", "peak hours", "cache efficiency", "per-key", "budget")
    for topic in topics:
        assert topic in titles, topic
    for panel in usage["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert "$__timeFilter(" in target["rawSql"], panel["title"]


def test_only_exported_metrics_are_queried(dashboard: dict[str, Any]) -> None:
    used = set()
    for expr in expressions(dashboard):
        for metric in re.findall(r"\bweather_proxy_\w+", expr):
            assert metric in METRICS, f"{metric} is not a metric the proxy exports"
            used.add(metric)
    families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRICS}
    shown = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    assert families == shown, f"metrics without a panel: {families - shown}"


def test_labels_used_exist_on_the_metrics(dashboard: dict[str, Any]) -> None:
    for expr in expressions(dashboard):
        metrics = set(re.findall(r"\bweather_proxy_\w+", expr))
        known = TARGET_LABELS.union(*(METRICS[m] for m in metrics))
        for group in QUERY_LABELS.findall(expr):
            for label in filter(None, (part.strip() for part in group.split(","))):
                assert label in known, f"{label!r} in {expr}"
        for _, selector in SELECTOR.findall(expr):
            for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector):
                assert label in known, f"{label!r} in {expr}"


def test_topics_are_covered(dashboard: dict[str, Any]) -> None:
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in (
        "requests",
        "p50",
        "p95",
        "p99",
        "cache hit ratio",
        "upstream",
        "breaker",
        "rate-limited",
        "top cities",
        "per-key usage",
        "redis",
        "config reload",
    ):
        assert topic in titles, topic
    assert "not metrics" in dashboard["description"]


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "weather-proxy-fleet"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace", "fleet"} <= variables
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'namespace=~"$namespace"' in target["expr"]
            assert expr_parentheses_balance(target["expr"])


def expr_parentheses_balance(expr: str) -> bool:
    depth = 0
    for char in expr:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_a_collapsed_logs_row_follows_a_request_in_loki_or_victorialogs(dashboard: dict[str, Any]) -> None:
    [row] = [p for p in dashboard["panels"] if p["type"] == "row" and p["title"] == "Logs"]
    assert row["collapsed"] is True  # its queries run only when opened, where a log data source exists
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (variables["logs"]["type"], variables["logs"]["query"]) == ("datasource", "loki")
    assert variables["vlogs"]["query"] == "victoriametrics-logs-datasource"
    assert variables["request_id"]["type"] == "textbox"
    ids = [p["id"] for p in dashboard["panels"]] + [p["id"] for p in row["panels"]]
    assert len(ids) == len(set(ids))
    by_source = {panel["datasource"]["uid"]: panel for panel in row["panels"]}
    assert set(by_source) == {"${logs}", "${vlogs}"}
    for panel in row["panels"]:
        assert panel["type"] == "logs"
        [target] = panel["targets"]
        assert target["datasource"] == panel["datasource"]
        assert "$namespace" in target["expr"]
        assert "$fleet" in target["expr"]
        assert "$request_id" in target["expr"]
    # LogQL: the stream selector of the PodLogs' labels, then the JSON line's requestId.
    loki = by_source["${logs}"]["targets"][0]["expr"]
    assert loki.startswith(f'{{namespace=~"$namespace", {podlogs.FLEET_LABEL}=~"$fleet"}} | json |'), loki
    # LogsQL: vlagent's fields, and requestId as the proxy writes it (a JSON line's field).
    assert 'requestId:~"$request_id"' in by_source["${vlogs}"]["targets"][0]["expr"]
