"""Inputs of the golden and behaviour tests: one fleet per preset, plus the interesting variations."""

from __future__ import annotations

import datetime
from typing import Any

from weather_operator.api import resolve, weatherproxy
from weather_operator.render import fleet
from weather_proxy import config

NAME = "paris"
NAMESPACE = "weather"
DEFAULT_IMAGE = "ghcr.io/weather-proxy/proxy:0.1.0"

KEYS = config.KeysFile(
    keys=[
        config.KeyEntry(
            id="weather/team-a", sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        ),
        config.KeyEntry(
            id="weather/team-b",
            sha256="60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
            rate_limit=config.Limit(requests_per_minute=600, burst=60),
            expires_at=datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC),
        ),
    ]
)

SPECS: dict[str, dict[str, Any]] = {
    "dev": {"environment": "dev"},
    "staging": {"environment": "staging"},
    "production": {"environment": "production"},
    "production-external-redis": {
        "environment": "production",
        "redis": {"mode": "External", "external": {"urlSecretRef": {"name": "shared-redis", "key": "url"}}},
        "topologySpread": {"mode": "Off"},
    },
    "production-customised": {
        "environment": "production",
        "image": "registry.example.com/weather/proxy:1.2.3",
        "replicas": 3,
        "autoscaling": {"enabled": False},
        "disruption": {"maxUnavailable": "25%"},
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "cache": {"ttlSeconds": 600, "warmCities": ["Paris", "London"]},
        "rateLimit": {
            "default": {"requestsPerMinute": 300, "burst": 30},
            "anonymous": {"requestsPerMinute": 5},
        },
        "auth": {"required": False},
        "logLevel": "warning",
        "redis": {
            "managed": {
                "image": "redis:7.4.1-alpine",
                "persistence": {"size": "5Gi", "storageClassName": "fast"},
            }
        },
        "monitoring": {
            "serviceMonitor": {"interval": "15s", "labels": {"release": "kube-prometheus-stack"}},
            "alerts": {
                "errorRatePercent": 2,
                "p95LatencySeconds": 0.5,
                "availabilityTarget": 99.5,
                "runbookBaseUrl": "https://runbooks.example.com/weather",
                "labels": {"release": "kube-prometheus-stack"},
            },
            "slo": {"latency": {"thresholdSeconds": 1, "percent": 99.5}, "minRequestsPerSecond": 0.5},
        },
        "tracing": {"otlpEndpoint": "http://otel-collector.observability:4318", "sampleRatio": 0.25},
        "logging": {"podLogs": {"enabled": True, "labels": {"instance": "primary"}}},
        "errorTracking": {
            "dsnSecretRef": {"name": "sentry", "key": "dsn"},
            "environment": "production-eu",
            "tracesSampleRate": 0.05,
        },
        "ingress": {
            "enabled": True,
            "host": "weather.example.com",
            "className": "nginx",
            "tlsSecretName": "weather-example-com-tls",
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        },
        "topologySpread": {"mode": "Hard"},
    },
}

BLUE_GREEN_SPEC: dict[str, Any] = {"environment": "production", "strategy": {"type": "BlueGreen"}}
# spec.strategy BlueGreen, as controller.rollout renders it: Stable (blue serves, green idle at 0),
# and Analyzing (blue kept as it is, green at full size behind <fleet>-preview).
BLUE_GREEN_CASES: dict[str, fleet.Workloads] = {
    "production-blue-green": fleet.Workloads(
        active="blue",
        rendered=(fleet.ProxyForm("blue"), fleet.ProxyForm("green", 0)),
        preview="green",
        blue_green=True,
    ),
    "production-blue-green-analyzing": fleet.Workloads(
        active="blue",
        rendered=(fleet.ProxyForm("green", 3),),
        kept=frozenset({"blue"}),
        preview="green",
        blue_green=True,
    ),
}

# Cases whose cluster lacks the Prometheus Operator CRDs.
WITHOUT_MONITORING_CRDS = {"staging-without-monitoring-crds": "staging"}
# Cases whose cluster serves Grafana's PodLogs CRD (the others do not: nothing of it is rendered).
WITH_POD_LOGS_CRD = frozenset({"production-customised"})


def inputs(
    case: str,
    *,
    monitoring_available: bool = True,
    pod_logs_available: bool | None = None,
    keys: config.KeysFile = KEYS,
    workloads: fleet.Workloads | None = None,
    **overrides: Any,
) -> fleet.FleetInputs:
    spec = {**(BLUE_GREEN_SPEC if case in BLUE_GREEN_CASES else SPECS[case]), **overrides}
    return fleet.FleetInputs(
        name=NAME,
        namespace=NAMESPACE,
        spec=resolve.effective(
            weatherproxy.WeatherProxySpec.model_validate(spec), default_image=DEFAULT_IMAGE
        ),
        keys=keys,
        monitoring_available=monitoring_available,
        pod_logs_available=case in WITH_POD_LOGS_CRD if pod_logs_available is None else pod_logs_available,
        workloads=workloads or BLUE_GREEN_CASES.get(case) or fleet.Workloads(),
    )


def all_cases() -> dict[str, fleet.FleetInputs]:
    out = {case: inputs(case) for case in SPECS}
    for case, base in WITHOUT_MONITORING_CRDS.items():
        out[case] = inputs(base, monitoring_available=False)
    return out


def blue_green_cases() -> dict[str, fleet.FleetInputs]:
    """spec.strategy BlueGreen: two Deployments and ConfigMaps (golden files; test_blue_green.py)."""
    return {case: inputs(case) for case in BLUE_GREEN_CASES}
