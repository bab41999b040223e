"""The PrometheusRule: symptom alerts and multi-window multi-burn-rate SLO alerts, fully annotated."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.unit.operator.render import cases
from weather_operator.render import fleet, prometheusrule


def _rule(**spec: Any) -> dict[str, Any]:
    result = fleet.render_fleet(cases.inputs("production", **spec))
    [rule] = [o for o in result.objects if o["kind"] == "PrometheusRule"]
    return rule


def _alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r}


def test_every_alert_has_severity_summary_description_and_runbook() -> None:
    alerts = _alerts(_rule())
    assert set(alerts) == {
        "WeatherProxyHighErrorRate",
        "WeatherProxyHighLatency",
        "WeatherProxyUpstreamBreakerOpen",
        "WeatherProxyUpstreamBudgetHigh",
        "WeatherProxyRedisDown",
        "WeatherProxyConfigReloadFailing",
        "WeatherProxyKeysWatchDown",
        "WeatherProxyCertificateExpiringSoon",
        "WeatherProxyErrorBudgetBurnFast",
        "WeatherProxyErrorBudgetBurnSlow",
        "WeatherProxyLatencyBudgetBurnFast",
        "WeatherProxyLatencyBudgetBurnSlow",
    }
    for name, alert in alerts.items():
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        assert alert["annotations"]["summary"], name
        assert alert["annotations"]["description"], name
        assert alert["annotations"]["runbook_url"].endswith(f"#{name.lower()}"), name
        assert 'namespace="weather",job="paris"' in alert["expr"], name


def test_metric_names_are_the_proxys() -> None:
    alerts = _alerts(_rule())
    assert "weather_proxy_http_requests_total" in alerts["WeatherProxyHighErrorRate"]["expr"]
    assert 'status=~"5.."' in alerts["WeatherProxyHighErrorRate"]["expr"]
    assert "weather_proxy_http_request_duration_seconds_bucket" in alerts["WeatherProxyHighLatency"]["expr"]
    assert "weather_proxy_upstream_breaker_state" in alerts["WeatherProxyUpstreamBreakerOpen"]["expr"]
    assert "weather_proxy_redis_up" in alerts["WeatherProxyRedisDown"]["expr"]
    budget = alerts["WeatherProxyUpstreamBudgetHigh"]["expr"]
    assert budget.startswith("max by (namespace, job, window) (weather_proxy_upstream_budget_used_ratio{")
    assert budget.endswith(">= 0.8")
    assert "weather_proxy_config_reload_success" in alerts["WeatherProxyConfigReloadFailing"]["expr"]
    assert "weather_proxy_keys_watch_connected" in alerts["WeatherProxyKeysWatchDown"]["expr"]


def test_thresholds_come_from_the_spec() -> None:
    alerts = _alerts(_rule(monitoring={"alerts": {"errorRatePercent": 2.5, "p95LatencySeconds": 0.75}}))
    assert alerts["WeatherProxyHighErrorRate"]["expr"].endswith("> 2.5")
    assert alerts["WeatherProxyHighLatency"]["expr"].endswith("> 0.75")


@pytest.mark.parametrize(
    ("target", "page_fast", "page_slow", "ticket"),
    [
        (None, "0.0144", "0.006", "0.001"),
        (99.5, "0.072", "0.03", "0.005"),
        (99.99, "0.00144", "0.0006", "0.0001"),
    ],
)
def test_burn_rate_thresholds_follow_the_availability_target(
    target: float | None, page_fast: str, page_slow: str, ticket: str
) -> None:
    spec = {} if target is None else {"monitoring": {"alerts": {"availabilityTarget": target}}}
    alerts = _alerts(_rule(**spec))
    fast = alerts["WeatherProxyErrorBudgetBurnFast"]
    assert fast["labels"]["severity"] == "critical"
    assert f'rate1h{{namespace="weather",job="paris"}} > {page_fast}' in fast["expr"]
    assert f'rate5m{{namespace="weather",job="paris"}} > {page_fast}' in fast["expr"]
    assert f'rate6h{{namespace="weather",job="paris"}} > {page_slow}' in fast["expr"]
    assert f'rate30m{{namespace="weather",job="paris"}} > {page_slow}' in fast["expr"]
    slow = alerts["WeatherProxyErrorBudgetBurnSlow"]
    assert slow["labels"]["severity"] == "warning"
    assert f'rate3d{{namespace="weather",job="paris"}} > {ticket}' in slow["expr"]
    assert f'rate6h{{namespace="weather",job="paris"}} > {ticket}' in slow["expr"]


def test_every_burn_window_is_recorded() -> None:
    rule = _rule()
    records = {r["record"] for group in rule["spec"]["groups"] for r in group["rules"] if "record" in r}
    windows = ("5m", "30m", "1h", "6h", "3d")
    assert records == {
        *(
            f"weatherproxy:http_{sli}:rate{w}"
            for sli in ("error_ratio", "slow_ratio", "requests")
            for w in windows
        ),
        "weatherproxy:http_errors:rate5m",
        "weatherproxy:http_slow_requests:rate5m",
        "weatherproxy:slo_objective:ratio",
        "weatherproxy:slo_sli:ratio30d",
        "weatherproxy:error_budget_remaining:ratio30d",
    }
    exprs = " ".join(r["expr"] for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r)
    for window in prometheusrule.BURN_WINDOWS:
        assert f"rate{window}{{" in exprs


@pytest.mark.parametrize(
    ("slo", "page_fast", "page_slow", "ticket", "floor"),
    [
        ({}, "0.144", "0.06", "0.01", "0.1"),
        (
            {"latency": {"thresholdSeconds": 1, "percent": 99.5}, "minRequestsPerSecond": 0},
            "0.072",
            "0.03",
            "0.005",
            "0",
        ),
    ],
)
def test_latency_burn_rate_thresholds_follow_the_latency_slo(
    slo: dict[str, Any], page_fast: str, page_slow: str, ticket: str, floor: str
) -> None:
    rule = _rule(monitoring={"slo": slo})
    alerts = _alerts(rule)
    job = '{namespace="weather",job="paris"}'
    fast = alerts["WeatherProxyLatencyBudgetBurnFast"]
    assert fast["labels"]["severity"] == "critical"
    for window, threshold in (("1h", page_fast), ("5m", page_fast), ("6h", page_slow), ("30m", page_slow)):
        assert f"weatherproxy:http_slow_ratio:rate{window}{job} > {threshold}" in fast["expr"]
    slow = alerts["WeatherProxyLatencyBudgetBurnSlow"]
    assert slow["labels"]["severity"] == "warning"
    assert f"weatherproxy:http_slow_ratio:rate3d{job} > {ticket}" in slow["expr"]
    # Each pair is silent below the floor on the request rate of its long window.
    for window in ("1h", "6h"):
        assert f"weatherproxy:http_requests:rate{window}{job} >= {floor}" in fast["expr"]
    assert f"weatherproxy:http_requests:rate3d{job} >= {floor}" in slow["expr"]
    threshold = "1.0" if slo else "0.5"
    slow_ratio = [
        r for g in rule["spec"]["groups"] for r in g["rules"] if r.get("record", "").endswith("ratio:rate5m")
    ]
    assert any(f'le="{threshold}"' in r["expr"] for r in slow_ratio)


def test_the_slis_leave_out_probes_and_scrapes() -> None:
    rule = _rule()
    [slo_group] = [g for g in rule["spec"]["groups"] if g["name"].endswith(".slo")]
    for record in slo_group["rules"]:
        for selector in re.findall(r"weather_proxy_\w+(\{[^}]*\})", record["expr"]):
            assert 'route!~"/health/live|/health/ready|/metrics"' in selector, record


def test_slo_availability_percent_and_its_older_name_agree() -> None:
    newer = _alerts(_rule(monitoring={"slo": {"availabilityPercent": 99.5}}))
    older = _alerts(_rule(monitoring={"alerts": {"availabilityTarget": 99.5}}))
    assert newer["WeatherProxyErrorBudgetBurnFast"] == older["WeatherProxyErrorBudgetBurnFast"]
    assert (
        'rate1h{namespace="weather",job="paris"} > 0.072' in newer["WeatherProxyErrorBudgetBurnFast"]["expr"]
    )


def test_numbers_are_printed_without_float_noise() -> None:
    assert prometheusrule._number(14.4 * (1 - 99.9 / 100)) == "0.0144"
    assert prometheusrule._number(5.0) == "5"
