"""The PrometheusRule (monitoring.coreos.com/v1) with a fleet's alerts.

Symptom alerts (error rate, p95 latency, breaker open, upstream budget at 80%, Redis down,
config reload failing, keys Secret not watched, serving certificate expiring within 14 days)
and multi-window, multi-burn-rate alerts on an availability SLO and a latency SLO (Google SRE
workbook, ch. 5): page when 1h and 5m burn 14.4x the budget or 6h and 30m burn 6x; open a
ticket when 3d and 6h burn 1x. A burn-rate alert also needs the long window's request rate to
reach ``minRequestsPerSecond``: at a few requests an hour one failure is a burn rate of
hundreds. Recording rules keep each SLO's 30-day SLI and the share of its error budget left.
Series are those the ServiceMonitor scrapes: ``job`` is the Service name.

The SLIs leave out the kubelet's probes and Prometheus's scrapes: they are traffic of the
platform, not of users, and at several requests a second per pod they alone would keep a quiet
fleet above ``minRequestsPerSecond`` and dilute its error ratio.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client import utils as prometheus_utils

from weather_operator.api import effective
from weather_operator.render import meta, names
from weather_proxy import contract

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PrometheusRule"

REQUESTS = contract.METRIC_HTTP_REQUESTS_TOTAL
DURATION_BUCKET = f"{contract.METRIC_HTTP_REQUEST_DURATION}_bucket"
DURATION_COUNT = f"{contract.METRIC_HTTP_REQUEST_DURATION}_count"
BREAKER_STATE = contract.METRIC_UPSTREAM_BREAKER_STATE
REDIS_UP = contract.METRIC_REDIS_UP
CONFIG_RELOAD_SUCCESS = contract.METRIC_CONFIG_RELOAD_SUCCESS
KEYS_WATCH_CONNECTED = contract.METRIC_KEYS_WATCH_CONNECTED
UPSTREAM_BUDGET_USED = contract.METRIC_UPSTREAM_BUDGET_USED
TLS_CERTIFICATE_EXPIRY = contract.METRIC_TLS_CERTIFICATE_EXPIRY
# A certificate served with less than this left: renewal (two thirds into its life: 30 days
# before the end of a 90-day leaf) has not happened or has not reached the pods.
CERTIFICATE_EXPIRY_WARN_DAYS = 14
BREAKER_OPEN = contract.BREAKER_STATE_VALUES["open"]
# Share of any window of spec.upstream.budget (minute, hour, day) that warns before misses get 503.
UPSTREAM_BUDGET_WARN_RATIO = 0.8

SERVER_ERRORS = 'status=~"5.."'
NOT_SLI_ROUTES = "|".join((contract.LIVENESS_PATH, contract.READINESS_PATH, contract.METRICS_PATH))

ERROR_RATIO_RECORD = "weatherproxy:http_error_ratio:rate{window}"
SLOW_RATIO_RECORD = "weatherproxy:http_slow_ratio:rate{window}"
REQUEST_RATE_RECORD = "weatherproxy:http_requests:rate{window}"
ERRORS_RECORD = "weatherproxy:http_errors:rate5m"
SLOW_RECORD = "weatherproxy:http_slow_requests:rate5m"
OBJECTIVE_RECORD = "weatherproxy:slo_objective:ratio"
SLI_RECORD = "weatherproxy:slo_sli:ratio30d"
BUDGET_RECORD = "weatherproxy:error_budget_remaining:ratio30d"
BURN_WINDOWS = ("5m", "30m", "1h", "6h", "3d")
PAGE_BURNS = (("1h", "5m", 14.4), ("6h", "30m", 6.0))
TICKET_BURNS = (("3d", "6h", 1.0),)
# The burn factors above spend a 30-day budget (14.4x for 1h is 2% of it); the budget records
# cover the same period.
BUDGET_PERIOD = "30d"


def _number(value: float) -> str:
    """A float as PromQL reads it, without binary noise (0.0144, not 0.014400000000000001)."""
    return format(round(value, 10), "g")


def _selector(proxy: str, namespace: str, extra: str = "") -> str:
    base = f'namespace="{namespace}",job="{names.service_name(proxy)}"'
    return "{" + base + (f",{extra}" if extra else "") + "}"


def _sli_selector(proxy: str, namespace: str, extra: str = "") -> str:
    return _selector(proxy, namespace, f'route!~"{NOT_SLI_ROUTES}"' + (f",{extra}" if extra else ""))


def _error_ratio(proxy: str, namespace: str, window: str) -> str:
    errors = _selector(proxy, namespace, SERVER_ERRORS)
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
        _alert(
            "WeatherProxyCertificateExpiringSoon",
            # Silent without spec.tls: the metric exists only where the pods serve HTTPS.
            f"min by (namespace, job) ({TLS_CERTIFICATE_EXPIRY}{sel}) - time()\n"
            f"< {CERTIFICATE_EXPIRY_WARN_DAYS} * 86400",
            "10m",
            "warning",
            f"Pods of WeatherProxy {fleet} serve a certificate that expires within "
            f"{CERTIFICATE_EXPIRY_WARN_DAYS} days.",
            "The certificate served expires in {{ $value | humanizeDuration }}; it should have been renewed "
            "(TLSReady of the WeatherProxy says which one and until when).",
            runbook,
            proxy,
        ),
    ]


@dataclasses.dataclass(frozen=True)
class _Slo:
    """One objective and how its alerts and records read."""

    name: str  # the ``slo`` label of its records
    percent: float
    ratio_record: str  # the share of bad requests over {window}
    bad_record: str  # bad requests per second over 5m
    fast_alert: str
    slow_alert: str
    budget: str  # the budget's name in the summaries
    objective: str  # appended to the summaries
    missed: str  # what a request missing the objective did, for the descriptions


def _slos(slo: effective.EffectiveSlo) -> tuple[_Slo, _Slo]:
    threshold = _number(slo.latency_threshold_seconds)
    return (
        _Slo(
            "availability",
            slo.availability_percent,
            ERROR_RATIO_RECORD,
            ERRORS_RECORD,
            "WeatherProxyErrorBudgetBurnFast",
            "WeatherProxyErrorBudgetBurnSlow",
            f"{_number(slo.availability_percent)}% availability",
            "",
            "failed more requests",
        ),
        _Slo(
            "latency",
            slo.latency_percent,
            SLOW_RATIO_RECORD,
            SLOW_RECORD,
            "WeatherProxyLatencyBudgetBurnFast",
            "WeatherProxyLatencyBudgetBurnSlow",
            "latency",
            f" (SLO: {_number(slo.latency_percent)}% of requests within {threshold}s)",
            f"answered more requests slower than {threshold}s",
        ),
    )


def _sli_sum(proxy: str, namespace: str, metric: str, window: str, extra: str = "") -> str:
    return f"sum by (namespace, job) (rate({metric}{_sli_selector(proxy, namespace, extra)}[{window}]))"


def _window_records(proxy: str, namespace: str, threshold: str) -> list[dict[str, Any]]:
    fast = f'le="{threshold}"'
    return [
        *(
            {
                "record": ERROR_RATIO_RECORD.format(window=w),
                "expr": f"{_sli_sum(proxy, namespace, REQUESTS, w, SERVER_ERRORS)}\n"
                f"/\n{_sli_sum(proxy, namespace, REQUESTS, w)}",
            }
            for w in BURN_WINDOWS
        ),
        *(
            {
                "record": SLOW_RATIO_RECORD.format(window=w),
                "expr": f"1 - (\n  {_sli_sum(proxy, namespace, DURATION_BUCKET, w, fast)}\n"
                f"  /\n  {_sli_sum(proxy, namespace, DURATION_COUNT, w)}\n)",
            }
            for w in BURN_WINDOWS
        ),
        *(
            {"record": REQUEST_RATE_RECORD.format(window=w), "expr": _sli_sum(proxy, namespace, REQUESTS, w)}
            for w in BURN_WINDOWS
        ),
    ]


def _budget_records(
    proxy: str, namespace: str, threshold: str, slos: tuple[_Slo, ...]
) -> list[dict[str, Any]]:
    job = _selector(proxy, namespace)
    requests_5m = REQUEST_RATE_RECORD.format(window="5m")
    fast = f'le="{threshold}"'
    records: list[dict[str, Any]] = [
        # A fleet that never failed has no 5xx series: 0, not nothing, keeps its 30-day SLI defined.
        {
            "record": ERRORS_RECORD,
            "expr": f"{_sli_sum(proxy, namespace, REQUESTS, '5m', SERVER_ERRORS)}\n"
            f"or\n0 * {requests_5m}{job}",
        },
        {
            "record": SLOW_RECORD,
            "expr": f"{_sli_sum(proxy, namespace, DURATION_COUNT, '5m')}\n"
            f"-\n{_sli_sum(proxy, namespace, DURATION_BUCKET, '5m', fast)}",
        },
    ]
    for slo in slos:
        labels = {"namespace": namespace, "job": names.service_name(proxy), "slo": slo.name}
        records.append(
            {"record": OBJECTIVE_RECORD, "expr": f"vector({_number(slo.percent / 100)})", "labels": labels}
        )
    for slo in slos:
        # Sums of the 5m rates over the period weigh each moment by its traffic like one 30-day rate
        # would, reading one aggregated series instead of every pod's raw series of 30 days. The
        # histogram's count and the request counter count the same requests (the proxy observes
        # both at once), so the latency SLI shares the availability SLI's denominator.
        records.append(
            {
                "record": SLI_RECORD,
                "expr": f"1 - (\n  sum_over_time({slo.bad_record}{job}[{BUDGET_PERIOD}])\n"
                f"  /\n  sum_over_time({requests_5m}{job}[{BUDGET_PERIOD}])\n)",
                "labels": {"slo": slo.name},
            }
        )
    for slo in slos:
        slo_label = f'slo="{slo.name}"'
        sli = f"{SLI_RECORD}{_selector(proxy, namespace, slo_label)}"
        records.append(
            {
                "record": BUDGET_RECORD,
                "expr": f"1 - (1 - {sli}) / {_number(1 - slo.percent / 100)}",
                "labels": {"slo": slo.name},
            }
        )
    return records


def _burn(
    proxy: str, namespace: str, ratio: str, long: str, short: str, factor: float, budget: float, floor: str
) -> str:
    threshold = _number(factor * budget)
    job = _selector(proxy, namespace)
    return (
        f"(\n  {ratio.format(window=long)}{job} > {threshold}\n"
        f"  and {ratio.format(window=short)}{job} > {threshold}\n"
        f"  and {REQUEST_RATE_RECORD.format(window=long)}{job} >= {floor}\n)"
    )


def _burn_alerts(
    proxy: str, namespace: str, alerts: effective.EffectiveAlerts, slo: _Slo
) -> list[dict[str, Any]]:
    budget = 1 - slo.percent / 100
    floor = _number(alerts.slo.min_requests_per_second)
    fleet = f"{namespace}/{proxy}"
    quiet = f"Silent while the fleet serves fewer than {floor} requests/s over the long window."

    def burns(pairs: tuple[tuple[str, str, float], ...]) -> str:
        return "\nor\n".join(
            _burn(proxy, namespace, slo.ratio_record, long, short, f, budget, floor)
            for long, short, f in pairs
        )

    return [
        _alert(
            slo.fast_alert,
            burns(PAGE_BURNS),
            "2m",
            "critical",
            f"WeatherProxy {fleet} burns its {slo.budget} error budget fast{slo.objective}.",
            "At this rate the 30-day error budget is gone within days (1h/5m at 14.4x or 6h/30m at 6x). "
            f"{quiet}",
            alerts.runbook_base_url,
            proxy,
        ),
        _alert(
            slo.slow_alert,
            burns(TICKET_BURNS),
            "1h",
            "warning",
            f"WeatherProxy {fleet} burns its {slo.budget} error budget{slo.objective}.",
            f"Over 3 days the fleet {slo.missed} than its SLO allows (3d/6h at 1x). {quiet}",
            alerts.runbook_base_url,
            proxy,
        ),
    ]


def _slo_rules(proxy: str, namespace: str, alerts: effective.EffectiveAlerts) -> list[dict[str, Any]]:
    slos = _slos(alerts.slo)
    # le as the proxy's client prints it (le="0.5", le="1.0"; Prometheus 3 normalises to the same).
    threshold = prometheus_utils.floatToGoString(alerts.slo.latency_threshold_seconds)  # type: ignore[no-untyped-call]
    return [
        *_window_records(proxy, namespace, threshold),
        *_budget_records(proxy, namespace, threshold, slos),
        *(alert for slo in slos for alert in _burn_alerts(proxy, namespace, alerts, slo)),
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
