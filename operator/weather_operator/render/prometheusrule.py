"""The PrometheusRule (monitoring.coreos.com/v1) with a fleet's alerts.

Symptom alerts (error rate, p95 latency, breaker open, upstream budget at 80%, Redis down,
config reload failing, keys Secret not watched) and multi-window, multi-burn-rate alerts on an
availability SLO (Google SRE workbook, ch. 5): page when 1h and 5m burn 14.4x the budget or
6h and 30m burn 6x; open a ticket when 3d and 6h burn 1x. Series are those the ServiceMonitor scrapes:
``job`` is the Service name.
"""

from __future__ import annotations

from typing import Any

from weather_operator.api import effective
from weather_operator.render import meta, names
from weather_proxy import contract

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"

REQUESTS = contract.METRIC_HTTP_REQUESTS_TOTAL
DURATION_BUCKET = f"{contract.METRIC_HTTP_REQUEST_DURATION}_bucket"
BREAKER_STATE = contract.METRIC_UPSTREAM_BREAKER_STATE
REDIS_UP = contract.METRIC_REDIS_UP
CONFIG_RELOAD_SUCCESS = contract.METRIC_CONFIG_RELOAD_SUCCESS
KEYS_WATCH_CONNECTED = contract.METRIC_KEYS_WATCH_CONNECTED
UPSTREAM_BUDGET_USED = contract.METRIC_UPSTREAM_BUDGET_USED
BREAKER_OPEN = contract.BREAKER_STATE_VALUES["open"]
# Share of any window of spec.upstream.budget (minute, hour, day) that warns before misses get 503.
UPSTREAM_BUDGET_WARN_RATIO = 0.8

ERROR_RATIO_RECORD = "weatherproxy:http_error_ratio:rate{window}"
BURN_WINDOWS = ("5m", "30m", "1h", "6h", "3d")
PAGE_BURNS = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
TICKET_BURNS = (("3d", "6h", 1.0),)


def _number(value: float) -> str:
    """A float as PromQL reads it, without binary noise (0.0144, not 0.014400000000000001)."""
    return format(round(value, 10), "g")


def _selector(proxy: str, namespace: str, extra: str = "") -> str:
    base = f'namespace="{namespace}",job="{names.service_name(proxy)}"'
    return "{" + base + (f",{extra}" if extra else "") + "}"


def _error_ratio(proxy: str, namespace: str, window: str) -> str:
    errors = _selector(proxy, namespace, 'status=~"5.."')
    total = _selector(proxy, namespace)
    return (
        f"sum by (namespace, job) (rate({REQUESTS}{errors}[{window}]))\n"
        f"/\nsum by (namespace, job) (rate({REQUESTS}{total}[{window}]))"
    )


def _alert(
    name: str, expr: str, for_: str, severity: str, summary: str, description: str, runbook: str, proxy: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "weatherproxy": proxy},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"{runbook}#{name.lower()}",
        },
    }


def _symptom_alerts(proxy: str, namespace: str, alerts: effective.EffectiveAlerts) -> list[dict[str, Any]]:
    sel = _selector(proxy, namespace)
    fleet = f"{namespace}/{proxy}"
    runbook = alerts.runbook_base_url
    error_pct = _number(alerts.error_rate_percent)
    p95 = _number(alerts.p95_latency_seconds)
    return [
        _alert(
            "WeatherProxyHighErrorRate",
            f"100 * ({_error_ratio(proxy, namespace, '5m')})\n> {error_pct}",
            "10m",
            "warning",
            f"WeatherProxy {fleet} answers more than {error_pct}% of requests with 5xx.",
            "{{ $value | humanize }}% of requests failed with a 5xx over the last 5 minutes.",
            runbook,
            proxy,
        ),
        _alert(
            "WeatherProxyHighLatency",
            "histogram_quantile(0.95,\n"
            f"  sum by (namespace, job, le) (rate({DURATION_BUCKET}{sel}[5m])))\n> {p95}",
            "10m",
            "warning",
            f"WeatherProxy {fleet} p95 latency is above {p95}s.",
            "The 95th percentile request latency is {{ $value | humanizeDuration }}.",
            runbook,
            proxy,
        ),
        _alert(
            "WeatherProxyUpstreamBreakerOpen",
            f"max by (namespace, job) ({BREAKER_STATE}{sel}) >= {BREAKER_OPEN}",
            "5m",
            "warning",
            f"WeatherProxy {fleet} has its Open-Meteo circuit breaker open.",
            "Upstream calls fail fast; the fleet serves cached and stale data only.",
            runbook,
            proxy,
        ),
        _alert(
            "WeatherProxyUpstreamBudgetHigh",
            f"max by (namespace, job, window) ({UPSTREAM_BUDGET_USED}{sel})\n"
            f">= {_number(UPSTREAM_BUDGET_WARN_RATIO)}",
            "5m",
            "warning",
            f"WeatherProxy {fleet} has used {_number(UPSTREAM_BUDGET_WARN_RATIO * 100)}% of an upstream "
            "budget window.",
            "{{ $value | humanizePercentage }} of the {{ $labels.window }} budget of Open-Meteo calls is "
            "spent; once it is all spent, misses with nothing cached get 503 upstream-budget-exhausted.",
            runbook,
            proxy,
        ),
        _alert(
            "WeatherProxyRedisDown",
            f"min by (namespace, job) ({REDIS_UP}{sel}) == 0",
            "5m",
            "warning",
            f"WeatherProxy {fleet} cannot reach Redis.",
            "Pods fall back to their memory cache and per-pod rate limits until Redis is back.",
            runbook,
            proxy,
        ),
        _alert(
            "WeatherProxyConfigReloadFailing",
            f"min by (namespace, job) ({CONFIG_RELOAD_SUCCESS}{sel}) == 0",
            "10m",
            "warning",
            f"WeatherProxy {fleet} fails to reload its configuration or keys.",
            "Pods keep serving with the last valid files; new or revoked keys are not in effect.",
            runbook,
            proxy,
        ),
        _alert(
            "WeatherProxyKeysWatchDown",
            f"min by (namespace, job) ({KEYS_WATCH_CONNECTED}{sel}) == 0",
            "5m",
            "warning",
            f"Pods of WeatherProxy {fleet} do not watch their keys Secret.",
            "Key changes reach these pods only when the kubelet re-projects the mounted file (a minute "
            "or more): a revoked key may be accepted, or a new one refused, for that long.",
            runbook,
            proxy,
        ),
    ]


def _burn(proxy: str, namespace: str, long: str, short: str, factor: float, budget: float) -> str:
    threshold = _number(factor * budget)
    job = f'{{namespace="{namespace}",job="{names.service_name(proxy)}"}}'
    return (
        f"({ERROR_RATIO_RECORD.format(window=long)}{job} > {threshold}"
        f" and {ERROR_RATIO_RECORD.format(window=short)}{job} > {threshold})"
    )


def _slo_rules(proxy: str, namespace: str, alerts: effective.EffectiveAlerts) -> list[dict[str, Any]]:
    budget = 1 - alerts.availability_target_percent / 100
    target = _number(alerts.availability_target_percent)
    fleet = f"{namespace}/{proxy}"
    records: list[dict[str, Any]] = [
        {"record": ERROR_RATIO_RECORD.format(window=w), "expr": _error_ratio(proxy, namespace, w)}
        for w in BURN_WINDOWS
    ]
    page = "\nor\n".join(_burn(proxy, namespace, long, short, f, budget) for long, short, f in PAGE_BURNS)
    ticket = "\nor\n".join(_burn(proxy, namespace, long, short, f, budget) for long, short, f in TICKET_BURNS)
    return [
        *records,
        _alert(
            "WeatherProxyErrorBudgetBurnFast",
            page,
            "2m",
            "critical",
            f"WeatherProxy {fleet} burns its {target}% availability error budget fast.",
            "At this rate the 30-day error budget is gone within days (1h/5m at 14.4x or 6h/30m at 6x).",
            alerts.runbook_base_url,
            proxy,
        ),
        _alert(
            "WeatherProxyErrorBudgetBurnSlow",
            ticket,
            "1h",
            "warning",
            f"WeatherProxy {fleet} burns its {target}% availability error budget.",
            "Over 3 days the fleet failed more requests than its SLO allows (3d/6h at 1x).",
            alerts.runbook_base_url,
            proxy,
        ),
    ]


def render(proxy: str, namespace: str, alerts: effective.EffectiveAlerts) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta.metadata(
            names.prometheus_rule_name(proxy), namespace, proxy, names.MONITORING, extra_labels=alerts.labels
        ),
        "spec": {
            "groups": [
                {
                    "name": f"weather-proxy.{namespace}.{proxy}.alerts",
                    "rules": _symptom_alerts(proxy, namespace, alerts),
                },
                {
                    "name": f"weather-proxy.{namespace}.{proxy}.slo",
                    "rules": _slo_rules(proxy, namespace, alerts),
                },
            ]
        },
    }
