"""Invalid WeatherProxy and ApiKey specs that the API server must reject.

A table, replayed by the unit tests (pydantic, and the CEL rules evaluated with
cel-python) and by the control-plane integration suite against a real
kube-apiserver. Each entry's ``patch`` is deep-merged into a valid base spec;
``error`` is a substring of the API server's rejection (for schema rules the field
path, for CEL rules the rule's message, which pydantic's validators repeat).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

WEATHERPROXY = "WeatherProxy"
APIKEY = "ApiKey"

VALID_WEATHERPROXY_SPEC: dict[str, Any] = {
    "environment": "production",
    "image": "ghcr.io/weather-proxy/proxy:0.1.0",
    "replicas": 2,
}
VALID_APIKEY_SPEC: dict[str, Any] = {"proxyRef": {"name": "paris"}}


@dataclasses.dataclass(frozen=True)
class BadSpec:
    name: str
    kind: str
    patch: dict[str, Any]
    error: str
    # True when ``error`` is the message of a CEL rule (x-kubernetes-validations).
    cel: bool = False

    def spec(self) -> dict[str, Any]:
        """The full invalid spec: the valid base with the patch merged in."""
        base = VALID_WEATHERPROXY_SPEC if self.kind == WEATHERPROXY else VALID_APIKEY_SPEC
        return merge(base, self.patch)


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``patch`` into a copy of ``base`` (dicts merge, anything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


BAD_SPECS: list[BadSpec] = [
    # WeatherProxy: CEL rules.
    BadSpec(
        "autoscaling-min-above-max",
        WEATHERPROXY,
        {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}},
        "spec.autoscaling.minReplicas must be <= spec.autoscaling.maxReplicas",
        cel=True,
    ),
    BadSpec(
        "disruption-both",
        WEATHERPROXY,
        {"disruption": {"minAvailable": 1, "maxUnavailable": 1}},
        "spec.disruption must set only one of minAvailable or maxUnavailable",
        cel=True,
    ),
    BadSpec(
        "disruption-neither",
        WEATHERPROXY,
        {"disruption": {"enabled": True}},
        "spec.disruption must set exactly one of minAvailable or maxUnavailable",
        cel=True,
    ),
    BadSpec(
        "redis-external-without-url",
        WEATHERPROXY,
        {"redis": {"mode": "External"}},
        "spec.redis.external.urlSecretRef is required when spec.redis.mode is External",
        cel=True,
    ),
    BadSpec(
        "ingress-enabled-without-host",
        WEATHERPROXY,
        {"ingress": {"enabled": True}},
        "spec.ingress.host is required when spec.ingress.enabled is true",
        cel=True,
    ),
    BadSpec(
        "slo-latency-threshold-between-buckets",
        WEATHERPROXY,
        {"monitoring": {"slo": {"latency": {"thresholdSeconds": 0.3}}}},
        "spec.monitoring.slo.latency.thresholdSeconds must be one of the bucket bounds of the proxy's "
        "request-duration histogram: 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10",
        cel=True,
    ),
    BadSpec(
        "slo-availability-contradicts-alerts-target",
        WEATHERPROXY,
        {"monitoring": {"alerts": {"availabilityTarget": 99.5}, "slo": {"availabilityPercent": 99.9}}},
        "spec.monitoring.slo.availabilityPercent and spec.monitoring.alerts.availabilityTarget must be "
        "equal when both are set",
        cel=True,
    ),
    BadSpec(
        "tls-cert-manager-without-issuer",
        WEATHERPROXY,
        {"tls": {"mode": "CertManager"}},
        "spec.tls.issuerRef is required when spec.tls.mode is CertManager",
        cel=True,
    ),
    BadSpec(
        "tls-secret-without-name",
        WEATHERPROXY,
        {"tls": {"mode": "Secret"}},
        "spec.tls.secretName is required when spec.tls.mode is Secret",
        cel=True,
    ),
    # WeatherProxy: schema rules.
    BadSpec("tls-mode-unknown", WEATHERPROXY, {"tls": {"mode": "Strict"}}, "spec.tls.mode"),
    BadSpec(
        "tls-issuer-kind-unknown",
        WEATHERPROXY,
        {"tls": {"mode": "CertManager", "issuerRef": {"name": "ca", "kind": "Vault"}}},
        "spec.tls.issuerRef.kind",
    ),
    BadSpec("tls-dns-name-invalid", WEATHERPROXY, {"tls": {"dnsNames": ["Not A Name"]}}, "spec.tls.dnsNames"),
    BadSpec("environment-unknown", WEATHERPROXY, {"environment": "qa"}, "spec.environment"),
    BadSpec("replicas-negative", WEATHERPROXY, {"replicas": -1}, "spec.replicas"),
    BadSpec("replicas-too-many", WEATHERPROXY, {"replicas": 101}, "spec.replicas"),
    BadSpec("image-with-space", WEATHERPROXY, {"image": "ghcr.io/weather proxy:1"}, "spec.image"),
    BadSpec("image-uppercase-repo", WEATHERPROXY, {"image": "GHCR.IO/Proxy:1"}, "spec.image"),
    BadSpec(
        "autoscaling-max-too-high",
        WEATHERPROXY,
        {"autoscaling": {"maxReplicas": 1000}},
        "spec.autoscaling.maxReplicas",
    ),
    BadSpec(
        "autoscaling-cpu-zero",
        WEATHERPROXY,
        {"autoscaling": {"targetCPUUtilizationPercentage": 0}},
        "spec.autoscaling.targetCPUUtilizationPercentage",
    ),
    BadSpec("redis-mode-unknown", WEATHERPROXY, {"redis": {"mode": "Cluster"}}, "spec.redis.mode"),
    BadSpec(
        "redis-url-ref-without-key",
        WEATHERPROXY,
        {"redis": {"mode": "External", "external": {"urlSecretRef": {"name": "my-redis"}}}},
        "spec.redis.external.urlSecretRef.key",
    ),
    BadSpec(
        "redis-persistence-size-not-quantity",
        WEATHERPROXY,
        {"redis": {"managed": {"persistence": {"size": "lots"}}}},
        "spec.redis.managed.persistence.size",
    ),
    BadSpec(
        "rate-limit-zero",
        WEATHERPROXY,
        {"rateLimit": {"default": {"requestsPerMinute": 0}}},
        "spec.rateLimit.default.requestsPerMinute",
    ),
    BadSpec(
        "rate-limit-anonymous-negative-burst",
        WEATHERPROXY,
        {"rateLimit": {"anonymous": {"requestsPerMinute": 10, "burst": -1}}},
        "spec.rateLimit.anonymous.burst",
    ),
    BadSpec(
        "warm-cities-too-many",
        WEATHERPROXY,
        {"cache": {"warmCities": [f"City{i}" for i in range(101)]}},
        "spec.cache.warmCities",
    ),
    BadSpec(
        "warm-city-too-long",
        WEATHERPROXY,
        {"cache": {"warmCities": ["x" * 101]}},
        "spec.cache.warmCities[0]",
    ),
    BadSpec("cache-ttl-zero", WEATHERPROXY, {"cache": {"ttlSeconds": 0}}, "spec.cache.ttlSeconds"),
    BadSpec(
        "cache-ttl-above-a-day",
        WEATHERPROXY,
        {"cache": {"ttlSeconds": 86401}},
        "spec.cache.ttlSeconds",
    ),
    BadSpec(
        "upstream-timeout-zero",
        WEATHERPROXY,
        {"upstream": {"timeoutSeconds": 0}},
        "spec.upstream.timeoutSeconds",
    ),
    BadSpec(
        "tracing-sample-ratio-above-one",
        WEATHERPROXY,
        {"tracing": {"sampleRatio": 1.5}},
        "spec.tracing.sampleRatio",
    ),
    BadSpec(
        "tracing-endpoint-not-url",
        WEATHERPROXY,
        {"tracing": {"otlpEndpoint": "collector:4318"}},
        "spec.tracing.otlpEndpoint",
    ),
    BadSpec(
        "error-tracking-traces-sample-rate-above-one",
        WEATHERPROXY,
        {"errorTracking": {"dsnSecretRef": {"name": "sentry", "key": "dsn"}, "tracesSampleRate": 1.5}},
        "spec.errorTracking.tracesSampleRate",
    ),
    BadSpec(
        "error-tracking-traces-sample-rate-negative",
        WEATHERPROXY,
        {"errorTracking": {"dsnSecretRef": {"name": "sentry", "key": "dsn"}, "tracesSampleRate": -0.1}},
        "spec.errorTracking.tracesSampleRate",
    ),
    BadSpec(
        "error-tracking-without-dsn-secret",
        WEATHERPROXY,
        {"errorTracking": {"environment": "production"}},
        "spec.errorTracking.dsnSecretRef",
    ),
    BadSpec(
        "error-tracking-dsn-secret-name-invalid",
        WEATHERPROXY,
        {"errorTracking": {"dsnSecretRef": {"name": "Sentry_DSN", "key": "dsn"}}},
        "spec.errorTracking.dsnSecretRef.name",
    ),
    BadSpec(
        "error-tracking-environment-with-a-blank",
        WEATHERPROXY,
        {"errorTracking": {"dsnSecretRef": {"name": "sentry", "key": "dsn"}, "environment": "prod eu"}},
        "spec.errorTracking.environment",
    ),
    BadSpec(
        "service-monitor-interval-no-unit",
        WEATHERPROXY,
        {"monitoring": {"serviceMonitor": {"interval": "30"}}},
        "spec.monitoring.serviceMonitor.interval",
    ),
    BadSpec(
        "blue-green-analysis-longer-than-the-progress-deadline",
        WEATHERPROXY,
        {
            "strategy": {
                "type": "BlueGreen",
                "blueGreen": {"progressDeadlineSeconds": 120, "analysis": {"durationSeconds": 120}},
            }
        },
        "spec.strategy.blueGreen.analysis.durationSeconds must be shorter than "
        "spec.strategy.blueGreen.progressDeadlineSeconds (defaults 60 and 600)",
        cel=True,
    ),
    BadSpec(
        "blue-green-progress-deadline-below-the-default-analysis",
        WEATHERPROXY,
        {"strategy": {"blueGreen": {"progressDeadlineSeconds": 30}}},
        "spec.strategy.blueGreen.analysis.durationSeconds must be shorter than "
        "spec.strategy.blueGreen.progressDeadlineSeconds (defaults 60 and 600)",
        cel=True,
    ),
    BadSpec(
        "blue-green-min-requests-0",
        WEATHERPROXY,
        {"strategy": {"blueGreen": {"analysis": {"minRequests": 0}}}},
        "spec.strategy.blueGreen.analysis.minRequests",
    ),
    BadSpec(
        "blue-green-error-ratio-above-1",
        WEATHERPROXY,
        {"strategy": {"blueGreen": {"analysis": {"maxErrorRatio": 1.5}}}},
        "spec.strategy.blueGreen.analysis.maxErrorRatio",
    ),
    BadSpec(
        "blue-green-p95-0",
        WEATHERPROXY,
        {"strategy": {"blueGreen": {"analysis": {"maxP95Seconds": 0}}}},
        "spec.strategy.blueGreen.analysis.maxP95Seconds",
    ),
    BadSpec(
        "strategy-type-unknown",
        WEATHERPROXY,
        {"strategy": {"type": "Canary"}},
        "spec.strategy.type",
    ),
    BadSpec(
        "alerts-error-rate-above-100",
        WEATHERPROXY,
        {"monitoring": {"alerts": {"errorRatePercent": 150}}},
        "spec.monitoring.alerts.errorRatePercent",
    ),
    BadSpec(
        "alerts-availability-100",
        WEATHERPROXY,
        {"monitoring": {"alerts": {"availabilityTarget": 100}}},
        "spec.monitoring.alerts.availabilityTarget",
    ),
    BadSpec(
        "slo-availability-100",
        WEATHERPROXY,
        {"monitoring": {"slo": {"availabilityPercent": 100}}},
        "spec.monitoring.slo.availabilityPercent",
    ),
    BadSpec(
        "slo-availability-0",
        WEATHERPROXY,
        {"monitoring": {"slo": {"availabilityPercent": 0}}},
        "spec.monitoring.slo.availabilityPercent",
    ),
    BadSpec(
        "slo-latency-percent-100",
        WEATHERPROXY,
        {"monitoring": {"slo": {"latency": {"percent": 100}}}},
        "spec.monitoring.slo.latency.percent",
    ),
    BadSpec(
        "slo-latency-percent-0",
        WEATHERPROXY,
        {"monitoring": {"slo": {"latency": {"percent": 0}}}},
        "spec.monitoring.slo.latency.percent",
    ),
    BadSpec(
        "slo-latency-threshold-zero",
        WEATHERPROXY,
        {"monitoring": {"slo": {"latency": {"thresholdSeconds": 0}}}},
        "spec.monitoring.slo.latency.thresholdSeconds",
    ),
    BadSpec(
        "slo-min-requests-negative",
        WEATHERPROXY,
        {"monitoring": {"slo": {"minRequestsPerSecond": -0.5}}},
        "spec.monitoring.slo.minRequestsPerSecond",
    ),
    BadSpec(
        "ingress-host-invalid",
        WEATHERPROXY,
        {"ingress": {"enabled": True, "host": "Not A Host"}},
        "spec.ingress.host",
    ),
    BadSpec("log-level-unknown", WEATHERPROXY, {"logLevel": "verbose"}, "spec.logLevel"),
    BadSpec(
        "topology-spread-mode-unknown",
        WEATHERPROXY,
        {"topologySpread": {"mode": "Strict"}},
        "spec.topologySpread.mode",
    ),
    # ApiKey.
    # The API server prunes the null of a non-nullable field, then reports it missing.
    BadSpec("apikey-proxyref-missing-name", APIKEY, {"proxyRef": {"name": None}}, "spec.proxyRef.name"),
    BadSpec("apikey-proxyref-name-invalid", APIKEY, {"proxyRef": {"name": "Paris_1"}}, "spec.proxyRef.name"),
    BadSpec("apikey-expires-not-a-date", APIKEY, {"expiresAt": "next tuesday"}, "spec.expiresAt"),
    BadSpec(
        "apikey-rate-limit-zero",
        APIKEY,
        {"rateLimit": {"requestsPerMinute": 0}},
        "spec.rateLimit.requestsPerMinute",
    ),
    BadSpec("apikey-rotation-negative", APIKEY, {"rotation": -1}, "spec.rotation"),
    BadSpec(
        "apikey-grace-period-negative",
        APIKEY,
        {"rotationGracePeriodSeconds": -5},
        "spec.rotationGracePeriodSeconds",
    ),
    BadSpec("apikey-secret-name-invalid", APIKEY, {"secretName": "Team A"}, "spec.secretName"),
    # The enum's values are listed in the API server's message.
    BadSpec(
        "apikey-scope-unknown",
        APIKEY,
        {"scopes": ["weather:read", "weather:write"]},
        'spec.scopes[1]: Unsupported value: "weather:write": supported values: "weather:read", '
        '"usage:read", "analytics:read"',
    ),
    BadSpec(
        "apikey-scope-repeated",
        APIKEY,
        {"scopes": ["usage:read", "usage:read"]},
        'spec.scopes[1]: Duplicate value: "usage:read"',
    ),
    BadSpec("apikey-scopes-empty", APIKEY, {"scopes": []}, "spec.scopes"),
]
