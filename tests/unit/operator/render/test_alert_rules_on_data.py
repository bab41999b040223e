"""Every alert of a production fleet's PrometheusRule, evaluated by promtool on synthetic series.

The rules are rendered as for the golden ``production`` case and written as a Prometheus rule
file; each scenario below becomes a ``promtool test rules`` file: the series a scrape by the
fleet's ServiceMonitor would store (``namespace``, ``job`` = the Service name, ``service``,
``pod``, ``instance``, ``endpoint``, ``container``; two pods, the kubelet's probes and
Prometheus's own scrapes included), minute by minute, and the alerts expected to fire, with
their labels and annotations, or to stay silent, at given times. An alert the operator renders
without a case where it fires and one where it stays silent fails
``test_every_alert_has_a_case_where_it_fires_and_one_where_it_is_silent``.

The test files are generated in ``tmp_path``, not committed: they follow the rendered rules
(thresholds, alert names, annotations), so committed copies would be one more golden file to
refresh by hand. On a failure the message holds promtool's report and the files' directory.

promtool comes from Debian's ``prometheus`` package (``make system-packages``); without it these
tests skip, except under ``CI=true`` where a missing promtool is a failure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import pytest
import yaml
from prometheus_client import utils as prometheus_utils

from testbed import installed
from tests.unit.operator.render import cases
from weather_operator.render import deployment, fleet, names, prometheusrule
from weather_proxy import contract
from weather_proxy.observability import metrics

PROMTOOL_ENV = "WPF_PROMTOOL"
ROOT = pathlib.Path(__file__).resolve().parents[4]
RUNBOOKS = ROOT / "docs" / "runbooks.md"
DASHBOARD = ROOT / "manifests" / "monitoring" / "dashboards" / "weather-proxy.json"

NAMESPACE = cases.NAMESPACE
JOB = names.service_name(cases.NAME)
PODS = (f"{cases.NAME}-5d8f7c9b6-2xkqp", f"{cases.NAME}-5d8f7c9b6-8mzvt")
API_ROUTE = "/v1/weather"
# Per pod and minute: liveness every 10 s, readiness every 5 s, a scrape every 30 s.
PLATFORM_ROUTES = {contract.LIVENESS_PATH: 6, contract.READINESS_PATH: 12, contract.METRICS_PATH: 2}
# Request durations: fast is well within the latency SLO, slow misses it (0.5 s) yet leaves the
# p95 alert (2 s) quiet, very slow misses both.
FAST, SLOW, VERY_SLOW, PLATFORM = 0.04, 0.8, 4.0, 0.004
LE = [prometheus_utils.floatToGoString(b) for b in metrics.LATENCY_BUCKETS] + ["+Inf"]  # type: ignore[no-untyped-call]


def find_promtool() -> str | None:
    """Path of promtool (``$WPF_PROMTOOL`` overrides the PATH lookup)."""
    return os.environ.get(PROMTOOL_ENV) or shutil.which("promtool")


def require_promtool() -> str:
    """The binary, or skip (locally) / fail (CI=true) with a clear reason."""
    return installed.require(
        find_promtool(), "promtool is not installed (apt-get install prometheus, or set WPF_PROMTOOL)"
    )


# --- the fleet's traffic, as the counters and histograms its pods export ------------------------


@dataclasses.dataclass(frozen=True)
class Traffic:
    """A phase of the fleet's API traffic: ``rpm`` requests a minute, split over the pods."""

    minutes: int
    rpm: float = 120.0
    errors: float = 0.0  # share answered 503
    slow: float = 0.0  # share answered in SLOW seconds
    very_slow: float = 0.0  # share answered in VERY_SLOW seconds


@dataclasses.dataclass(frozen=True)
class Gauge:
    """Pod 0's value of a gauge for a number of minutes (pod 1 stays healthy)."""

    minutes: int
    value: float


# A gauge: its name and its labels beside the scrape's.
GaugeKey = tuple[str, tuple[tuple[str, str], ...]]
HEALTHY_GAUGES: dict[GaugeKey, float] = {
    (contract.METRIC_UPSTREAM_BREAKER_STATE, ()): contract.BREAKER_STATE_VALUES["closed"],
    (contract.METRIC_REDIS_UP, ()): 1,
    (contract.METRIC_CONFIG_RELOAD_SUCCESS, (("file", contract.CONFIG_FILE),)): 1,
    (contract.METRIC_CONFIG_RELOAD_SUCCESS, (("file", contract.KEYS_FILE),)): 1,
    (contract.METRIC_KEYS_WATCH_CONNECTED, ()): 1,
    (contract.METRIC_UPSTREAM_BUDGET_USED, (("window", "minute"),)): 0.1,
    (contract.METRIC_UPSTREAM_BUDGET_USED, (("window", "hour"),)): 0.3,
    (contract.METRIC_UPSTREAM_BUDGET_USED, (("window", "day"),)): 0.5,
    # notAfter of the served certificate, unix seconds: 60 days after the scenario's start (t=0).
    (contract.METRIC_TLS_CERTIFICATE_EXPIRY, ()): 60 * 86400,
}


def _num(value: float) -> str:
    return format(round(value, 9), ".15g")


def _series(metric: str, pod: int, **labels: str) -> str:
    scraped = {
        "namespace": NAMESPACE,
        "job": JOB,
        "service": JOB,
        "pod": PODS[pod],
        "instance": f"10.244.0.{11 + pod}:{contract.HTTP_PORT}",
        "endpoint": names.HTTP_PORT_NAME,
        "container": deployment.CONTAINER_NAME,
        **labels,
    }
    return metric + "{" + ", ".join(f'{k}="{v}"' for k, v in scraped.items()) + "}"


def _counter(steps: list[tuple[float, int]]) -> str:
    """A counter in promtool's expanding notation: ``per_minute`` more for ``minutes``, phase by phase."""
    parts: list[str] = []
    value = 0.0
    for per_minute, minutes in steps:
        if not parts:
            parts.append(f"0+{_num(per_minute)}x{minutes}")  # minutes + 1 samples, from t=0
            value = per_minute * minutes
            continue
        start = value + per_minute
        parts.append(f"{_num(start)}+{_num(per_minute)}x{minutes - 1}")
        value = start + per_minute * (minutes - 1)
    return " ".join(parts)


def _gauge(phases: list[tuple[float, int]]) -> str:
    parts: list[str] = []
    for value, minutes in phases:
        count = minutes if not parts else minutes - 1
        parts.append(f"{_num(value)}+0x{count}")
    return " ".join(parts)


def _histogram(route: str, pod: int, phases: list[tuple[dict[float, float], int]]) -> list[dict[str, str]]:
    """The request-duration histogram's _bucket and _count series; phases map durations to counts a minute."""
    name = contract.METRIC_HTTP_REQUEST_DURATION
    out = [
        {
            "series": _series(f"{name}_bucket", pod, route=route, le=le),
            "values": _counter(
                [(sum(n for d, n in seen.items() if d <= float(le)), m) for seen, m in phases]
            ),
        }
        for le in LE
    ]
    count = _counter([(sum(seen.values()), m) for seen, m in phases])
    return [*out, {"series": _series(f"{name}_count", pod, route=route), "values": count}]


def input_series(
    traffic: tuple[Traffic, ...], gauges: Mapping[GaugeKey, tuple[Gauge, ...]]
) -> list[dict[str, str]]:
    minutes = sum(t.minutes for t in traffic)
    requests = contract.METRIC_HTTP_REQUESTS_TOTAL
    out: list[dict[str, str]] = []
    for pod in range(len(PODS)):
        share = [(t.rpm / len(PODS), t) for t in traffic]
        ok = _counter([(n * (1 - t.errors), t.minutes) for n, t in share])
        out.append(
            {"series": _series(requests, pod, route=API_ROUTE, method="GET", status="200"), "values": ok}
        )
        # A fleet that never failed has no 5xx series at all: the rules must cope with that too.
        if any(t.errors for t in traffic):
            errors = _counter([(n * t.errors, t.minutes) for n, t in share])
            out.append(
                {
                    "series": _series(requests, pod, route=API_ROUTE, method="GET", status="503"),
                    "values": errors,
                }
            )
        seen = [
            ({FAST: n * (1 - t.slow - t.very_slow), SLOW: n * t.slow, VERY_SLOW: n * t.very_slow}, t.minutes)
            for n, t in share
        ]
        out += _histogram(API_ROUTE, pod, seen)
        for route, per_minute in PLATFORM_ROUTES.items():
            probes = _counter([(per_minute, minutes)])
            out.append(
                {"series": _series(requests, pod, route=route, method="GET", status="200"), "values": probes}
            )
            out += _histogram(route, pod, [({PLATFORM: per_minute}, minutes)])
        for (metric, labels), healthy in HEALTHY_GAUGES.items():
            phases = gauges.get((metric, labels), ()) if pod == 0 else ()
            values = [(g.value, g.minutes) for g in phases] or [(healthy, minutes)]
            assert sum(m for _, m in values) == minutes, (metric, labels)
            out.append({"series": _series(metric, pod, **dict(labels)), "values": _gauge(values)})
    return out


# --- what must happen ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fires:
    """``alert`` is firing at ``at`` with the fleet's labels, the rule's and ``labels``."""

    at: str
    alert: str
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # The rendered description, for the alerts whose description is a template.
    description: str | None = None


@dataclasses.dataclass(frozen=True)
class Silent:
    """None of ``alerts`` is firing at ``at``."""

    at: str
    alerts: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Value:
    """``expr`` gives exactly ``samples`` (series -> value) at ``at``."""

    at: str
    expr: str
    samples: Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    traffic: tuple[Traffic, ...]
    checks: tuple[Fires | Silent | Value, ...]
    gauges: Mapping[GaugeKey, tuple[Gauge, ...]] = dataclasses.field(default_factory=dict)
    # Multi-day scenarios are evaluated every 10 minutes: every minute would take minutes of CPU.
    evaluation_interval: str = "1m"


AVAILABILITY_FAST = "WeatherProxyErrorBudgetBurnFast"
AVAILABILITY_SLOW = "WeatherProxyErrorBudgetBurnSlow"
LATENCY_FAST = "WeatherProxyLatencyBudgetBurnFast"
LATENCY_SLOW = "WeatherProxyLatencyBudgetBurnSlow"
BURN_ALERTS = (AVAILABILITY_FAST, AVAILABILITY_SLOW, LATENCY_FAST, LATENCY_SLOW)
SYMPTOM_ALERTS = (
    "WeatherProxyHighErrorRate",
    "WeatherProxyHighLatency",
    "WeatherProxyUpstreamBreakerOpen",
    "WeatherProxyUpstreamBudgetHigh",
    "WeatherProxyRedisDown",
    "WeatherProxyConfigReloadFailing",
    "WeatherProxyKeysWatchDown",
    "WeatherProxyCertificateExpiringSoon",
)
THREE_DAYS = 72 * 60
FLEET = f'{{job="{JOB}", namespace="{NAMESPACE}"}}'


def _fleet(**labels: str) -> str:
    return (
        "{"
        + ", ".join(f'{k}="{v}"' for k, v in sorted({"job": JOB, "namespace": NAMESPACE, **labels}.items()))
        + "}"
    )


def _rounded(record: str) -> str:
    """A record rounded to 1e-6: sums of rates carry float noise that promtool would compare."""
    return f"round({record}, 0.000001)"


SCENARIOS = [
    Scenario(
        # Three days of 2 requests/s, no 5xx at all (no 5xx series), 0.5% slower than 0.5 s.
        "steady-healthy-traffic",
        (Traffic(THREE_DAYS + 120, slow=0.005),),
        (
            Silent("2h", BURN_ALERTS + SYMPTOM_ALERTS),
            Silent("73h", BURN_ALERTS + SYMPTOM_ALERTS),
            Value("73h", _rounded("weatherproxy:http_requests:rate1h"), {FLEET: 2}),
            Value(
                "73h",
                _rounded("weatherproxy:error_budget_remaining:ratio30d"),
                {_fleet(slo="availability"): 1, _fleet(slo="latency"): 0.5},
            ),
            Value(
                "73h",
                _rounded("weatherproxy:slo_sli:ratio30d"),
                {_fleet(slo="availability"): 1, _fleet(slo="latency"): 0.995},
            ),
            Value(
                "73h",
                "weatherproxy:slo_objective:ratio",
                {
                    "weatherproxy:slo_objective:ratio" + _fleet(slo="availability"): 0.999,
                    "weatherproxy:slo_objective:ratio" + _fleet(slo="latency"): 0.99,
                },
            ),
        ),
        evaluation_interval="10m",
    ),
    Scenario(
        # One request every 20 s, every one a slow 503, for three days: below minRequestsPerSecond
        # (0.1), so no burn-rate alert, though the probes alone run at 0.67 requests/s.
        "low-traffic-total-failure",
        (Traffic(THREE_DAYS + 120, rpm=3, errors=1, very_slow=1),),
        (
            Silent("2h", BURN_ALERTS),
            Silent("7h", BURN_ALERTS),
            Silent("73h", BURN_ALERTS),
            Value("73h", _rounded("weatherproxy:http_requests:rate3d"), {FLEET: 0.05}),
            Value(
                "73h",
                "weatherproxy:http_error_ratio:rate1h",
                {"weatherproxy:http_error_ratio:rate1h" + FLEET: 1},
            ),
            Value(
                "73h",
                "weatherproxy:http_slow_ratio:rate1h",
                {"weatherproxy:http_slow_ratio:rate1h" + FLEET: 1},
            ),
        ),
        evaluation_interval="10m",
    ),
    Scenario(
        # The same failure at 0.2 requests/s, above the floor: both SLOs page.
        "low-traffic-above-the-floor",
        (Traffic(120, rpm=12, errors=1, very_slow=1),),
        (Fires("90m", AVAILABILITY_FAST), Fires("90m", LATENCY_FAST)),
    ),
    Scenario(
        # An hour clean, 30 minutes of 503s, an hour clean: a page. 35 minutes after the end the 5m
        # and 30m windows are clean again: the 1h and 6h windows alone, far above 14.4x and 6x
        # still, do not keep paging.
        "outage-pages-then-resolves",
        (Traffic(60), Traffic(30, errors=1), Traffic(60)),
        (
            Fires("75m", AVAILABILITY_FAST),
            Silent("75m", (LATENCY_FAST,)),
            Fires("105m", AVAILABILITY_FAST),
            Silent("125m", (AVAILABILITY_FAST,)),
            # 25 of the last 60 minutes failed.
            Value("125m", "round(weatherproxy:http_error_ratio:rate1h, 0.01)", {FLEET: 0.42}),
        ),
    ),
    Scenario(
        # Every request in 0.8 s for 30 minutes: the latency SLO pages while p95 (under 1 s) stays
        # below the 2 s symptom alert.
        "slowdown-pages-the-latency-slo",
        (Traffic(60), Traffic(30, slow=1), Traffic(60)),
        (
            Fires("75m", LATENCY_FAST),
            Silent("75m", ("WeatherProxyHighLatency", AVAILABILITY_FAST)),
            Silent("125m", (LATENCY_FAST,)),
        ),
    ),
    Scenario(
        # Three clean hours, then two minutes where 30% of requests fail and all are slow: 1.4% of
        # the availability budget and 3.3% of the hour's latency budget. The 5m windows burn far
        # above 14.4x, the 1h windows do not: nothing pages.
        "short-blip-does-not-page",
        (Traffic(180), Traffic(2, errors=0.3, slow=1), Traffic(60)),
        (
            Silent("183m", BURN_ALERTS),
            Silent("186m", BURN_ALERTS),
            Silent("190m", BURN_ALERTS),
            Silent("230m", BURN_ALERTS),
        ),
    ),
    Scenario(
        # The same two minutes with every request failing spend 4.6% of the 30-day budget, over the
        # 2% in an hour at which the workbook pages; the page ends when the 30m window is clean.
        "short-total-outage-pages",
        (Traffic(180), Traffic(2, errors=1), Traffic(60)),
        (Fires("184m", AVAILABILITY_FAST), Silent("220m", (AVAILABILITY_FAST,))),
    ),
    Scenario(
        # 0.8% errors and 8% slow requests for 8 hours: under 14.4x over 1h, over 6x over 6h/30m.
        "steady-burn-pages-on-6h",
        (Traffic(480, errors=0.008, slow=0.08),),
        (Fires("7h", AVAILABILITY_FAST), Fires("7h", LATENCY_FAST)),
    ),
    Scenario(
        # 0.3% errors and 3% slow requests for three days: a ticket (3d/6h over 1x), no page; six
        # clean hours later the 3d window is still over 1x, the 6h one is not: the ticket resolves.
        "three-day-burn-opens-a-ticket",
        (Traffic(THREE_DAYS + 60, errors=0.003, slow=0.03), Traffic(7 * 60)),
        (
            Fires("73h", AVAILABILITY_SLOW),
            Fires("73h", LATENCY_SLOW),
            Silent("73h", (AVAILABILITY_FAST, LATENCY_FAST)),
            Silent("80h", (AVAILABILITY_SLOW, LATENCY_SLOW)),
            Value(
                "73h",
                _rounded("weatherproxy:error_budget_remaining:ratio30d"),
                {_fleet(slo="availability"): -2, _fleet(slo="latency"): -2},
            ),
        ),
        evaluation_interval="10m",
    ),
    Scenario(
        # 20% of API requests fail; with the probes (all 200) that is 15% of what the pods served.
        "high-error-rate",
        (Traffic(40, errors=0.2),),
        (
            Fires(
                "30m",
                "WeatherProxyHighErrorRate",
                description="15% of requests failed with a 5xx over the last 5 minutes.",
            ),
        ),
    ),
    Scenario(
        # Every API request takes 4 s: p95 over API and probe requests is 4.833 s
        # (2.5 + (0.95 * 160 - 40) / 120 * 2.5, linear within the (2.5, 5] bucket).
        "high-latency",
        (Traffic(40, very_slow=1),),
        (
            Fires(
                "30m",
                "WeatherProxyHighLatency",
                description="The 95th percentile request latency is 4.833s.",
            ),
        ),
    ),
    Scenario(
        # One pod's dependencies fail for 30 minutes (the other pod's are fine).
        "dependencies-fail",
        (Traffic(30),),
        (
            Fires("25m", "WeatherProxyUpstreamBreakerOpen"),
            Fires(
                "25m",
                "WeatherProxyUpstreamBudgetHigh",
                labels={"window": "hour"},
                description="90% of the hour budget of Open-Meteo calls is spent; once it is all spent, "
                "misses with nothing cached get 503 upstream-budget-exhausted.",
            ),
            Fires("25m", "WeatherProxyRedisDown"),
            Fires("25m", "WeatherProxyConfigReloadFailing"),
            Fires("25m", "WeatherProxyKeysWatchDown"),
        ),
        gauges={
            (contract.METRIC_UPSTREAM_BREAKER_STATE, ()): (Gauge(30, contract.BREAKER_STATE_VALUES["open"]),),
            (contract.METRIC_UPSTREAM_BUDGET_USED, (("window", "hour"),)): (Gauge(30, 0.9),),
            (contract.METRIC_REDIS_UP, ()): (Gauge(30, 0),),
            (contract.METRIC_CONFIG_RELOAD_SUCCESS, (("file", contract.KEYS_FILE),)): (Gauge(30, 0),),
            (contract.METRIC_KEYS_WATCH_CONNECTED, ()): (Gauge(30, 0),),
        },
    ),
    Scenario(
        # Below the thresholds (breaker half-open, 79% of the budget) or shorter than the alerts'
        # `for` (Redis and the keys watch down 4 minutes, a reload failing 9).
        "dependencies-wobble",
        (Traffic(30),),
        (
            Silent(
                "25m",
                (
                    "WeatherProxyUpstreamBreakerOpen",
                    "WeatherProxyUpstreamBudgetHigh",
                    "WeatherProxyRedisDown",
                    "WeatherProxyConfigReloadFailing",
                    "WeatherProxyKeysWatchDown",
                ),
            ),
        ),
        gauges={
            (contract.METRIC_UPSTREAM_BREAKER_STATE, ()): (
                Gauge(30, contract.BREAKER_STATE_VALUES["half-open"]),
            ),
            (contract.METRIC_UPSTREAM_BUDGET_USED, (("window", "hour"),)): (Gauge(30, 0.79),),
            (contract.METRIC_REDIS_UP, ()): (Gauge(10, 1), Gauge(4, 0), Gauge(16, 1)),
            (contract.METRIC_CONFIG_RELOAD_SUCCESS, (("file", contract.CONFIG_FILE),)): (
                Gauge(10, 1),
                Gauge(9, 0),
                Gauge(11, 1),
            ),
            (contract.METRIC_KEYS_WATCH_CONNECTED, ()): (Gauge(10, 1), Gauge(4, 0), Gauge(16, 1)),
        },
    ),
    Scenario(
        # One pod still serves a certificate that ends 13 days after t=0 (its renewal did not reach it).
        "certificate-expiring",
        (Traffic(30),),
        (
            Fires(
                "25m",
                "WeatherProxyCertificateExpiringSoon",
                description="The certificate served expires in 12d 23h 35m 0s; it should have been renewed "
                "(TLSReady of the WeatherProxy says which one and until when).",
            ),
        ),
        gauges={(contract.METRIC_TLS_CERTIFICATE_EXPIRY, ()): (Gauge(30, 13 * 86400),)},
    ),
    Scenario(
        # 15 days left, and 13 days for 9 minutes only (shorter than the alert's `for`).
        "certificate-renewed-in-time",
        (Traffic(30),),
        (Silent("25m", ("WeatherProxyCertificateExpiringSoon",)),),
        gauges={
            (contract.METRIC_TLS_CERTIFICATE_EXPIRY, ()): (
                Gauge(10, 15 * 86400),
                Gauge(9, 13 * 86400),
                Gauge(11, 60 * 86400),
            )
        },
    ),
]


# --- the rules and promtool --------------------------------------------------------------------


@pytest.fixture(scope="module")
def rule() -> dict[str, Any]:
    result = fleet.render_fleet(cases.inputs("production"))
    [rendered] = [o for o in result.objects if o["kind"] == prometheusrule.KIND]
    return rendered


def _alert_rules(rule: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r}


def _expected(rule: Mapping[str, Any], check: Fires) -> dict[str, Any]:
    alert = _alert_rules(rule)[check.alert]
    annotations = dict(alert["annotations"])
    if check.description is not None:
        annotations["description"] = check.description
    assert "{{" not in annotations["description"], f"{check.alert}: give the rendered description"
    labels = {"namespace": NAMESPACE, "job": JOB, **alert["labels"], **check.labels}
    return {"exp_labels": labels, "exp_annotations": annotations}


def promtool_tests(rule: Mapping[str, Any], scenario: Scenario, rules_file: str) -> dict[str, Any]:
    """The ``promtool test rules`` file of one scenario."""
    alert_tests: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for check in scenario.checks:
        if isinstance(check, Fires):
            alert_tests.setdefault((check.at, check.alert), []).append(_expected(rule, check))
        elif isinstance(check, Silent):
            for alert in check.alerts:
                alert_tests.setdefault((check.at, alert), [])
    values = [
        {
            "expr": check.expr,
            "eval_time": check.at,
            "exp_samples": [{"labels": series, "value": value} for series, value in check.samples.items()],
        }
        for check in scenario.checks
        if isinstance(check, Value)
    ]
    return {
        "rule_files": [rules_file],
        "evaluation_interval": scenario.evaluation_interval,
        "tests": [
            {
                "name": scenario.name,
                "interval": "1m",
                "input_series": input_series(scenario.traffic, scenario.gauges),
                "alert_rule_test": [
                    {"eval_time": at, "alertname": alert, "exp_alerts": expected}
                    for (at, alert), expected in alert_tests.items()
                ],
                "promql_expr_test": values,
            }
        ],
    }


def _write_rules(rule: Mapping[str, Any], directory: pathlib.Path) -> pathlib.Path:
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


def _promtool(*args: str, cwd: pathlib.Path) -> None:
    done = subprocess.run(
        [require_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)} in {cwd}:\n{done.stdout}\n{done.stderr}"


def test_the_rendered_rules_pass_promtool_check(rule: Mapping[str, Any], tmp_path: pathlib.Path) -> None:
    _promtool("check", "rules", _write_rules(rule, tmp_path).name, cwd=tmp_path)


def _run(rule: Mapping[str, Any], scenario: Scenario, directory: pathlib.Path) -> None:
    rules = _write_rules(rule, directory)
    tests = directory / f"{scenario.name}.test.yaml"
    tests.write_text(yaml.safe_dump(promtool_tests(rule, scenario, rules.name), sort_keys=False, width=1000))
    _promtool("test", "rules", tests.name, cwd=directory)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_alerts_on_data(rule: Mapping[str, Any], scenario: Scenario, tmp_path: pathlib.Path) -> None:
    _run(rule, scenario, tmp_path)


# What the dashboard's SLO queries give on healthy traffic with no 5xx and 0.5% of requests slower
# than 0.5 s: (the first recorded series a query reads, its slo label) -> value.
DASHBOARD_ON_HEALTHY_TRAFFIC: dict[tuple[str, str | None], float] = {
    ("weatherproxy:slo_sli:ratio30d", "availability"): 1,
    ("weatherproxy:slo_sli:ratio30d", "latency"): 0.995,
    ("weatherproxy:slo_objective:ratio", "availability"): 0.999,
    ("weatherproxy:slo_objective:ratio", "latency"): 0.99,
    ("weatherproxy:error_budget_remaining:ratio30d", "availability"): 1,
    ("weatherproxy:error_budget_remaining:ratio30d", "latency"): 0.5,
    ("weatherproxy:http_error_ratio:rate1h", None): 1,
    ("weatherproxy:http_slow_ratio:rate1h", None): 0.995,
}


def test_the_dashboards_slo_panels_read_the_recorded_series(
    rule: Mapping[str, Any], tmp_path: pathlib.Path
) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "weatherproxy:" in t["expr"]
    ]
    checks = []
    for query in queries:
        record = re.search(r"weatherproxy:[\w:]+", query)
        slo = re.search(r'slo="(\w+)"', query)
        assert record is not None
        key = (record[0], slo[1] if slo else None)
        assert key in DASHBOARD_ON_HEALTHY_TRAFFIC, f"no expected value for the dashboard query {query}"
        expr = query.replace("$namespace", NAMESPACE).replace("$fleet", JOB)
        series = _fleet(slo=slo[1]) if slo else FLEET
        checks.append(Value("110m", _rounded(expr), {series: DASHBOARD_ON_HEALTHY_TRAFFIC[key]}))
    # Every SLO panel's query once: a new one needs its expected value above.
    assert len(checks) == len(DASHBOARD_ON_HEALTHY_TRAFFIC)
    _run(rule, Scenario("dashboard-slo-panels", (Traffic(120, slow=0.005),), tuple(checks)), tmp_path)


# --- coverage: every alert tested both ways, every alert with a runbook ------------------------


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_is_silent(rule: Mapping[str, Any]) -> None:
    rendered = set(_alert_rules(rule))
    fires = {c.alert for s in SCENARIOS for c in s.checks if isinstance(c, Fires)}
    silent = {a for s in SCENARIOS for c in s.checks if isinstance(c, Silent) for a in c.alerts}
    assert rendered - fires == set(), "alerts never shown to fire"
    assert rendered - silent == set(), "alerts never shown to stay silent"
    assert fires | silent <= rendered, "cases for alerts the operator does not render"
    assert set(BURN_ALERTS + SYMPTOM_ALERTS) == rendered


def test_burn_rate_alerts_are_silent_at_low_traffic_in_some_case() -> None:
    [low] = [s for s in SCENARIOS if s.name == "low-traffic-total-failure"]
    silenced = {a for c in low.checks if isinstance(c, Silent) for a in c.alerts}
    assert silenced == set(BURN_ALERTS)
    assert all(
        t.rpm / 60 < cases.inputs("production").spec.monitoring.alerts.slo.min_requests_per_second
        for t in low.traffic
    )


def test_every_alert_has_a_runbook_section(rule: Mapping[str, Any]) -> None:
    headings = set(re.findall(r"^## (\S+)$", RUNBOOKS.read_text(), flags=re.MULTILINE))
    for name, alert in _alert_rules(rule).items():
        assert name in headings, f"docs/runbooks.md has no section for {name}"
        # GitHub's anchor of a heading that is one word: the word in lower case.
        assert alert["annotations"]["runbook_url"].endswith(f"/docs/runbooks.md#{name.lower()}")
