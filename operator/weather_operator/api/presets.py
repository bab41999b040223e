"""Environment presets: the values an unset WeatherProxy field takes in dev, staging, production.

A preset never overrides what the user wrote; ``resolve.effective()`` (which
``api.resolve.effective()`` calls) applies it field by field.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping

from weather_operator.api import effective
from weather_proxy import config


@dataclasses.dataclass(frozen=True)
class Preset:
    """Defaults of one environment."""

    replicas: int
    autoscaling_enabled: bool
    min_replicas: int
    max_replicas: int
    target_cpu_utilization_percentage: int
    disruption_enabled: bool
    min_available: int
    alerts_enabled: bool
    service_monitor_enabled: bool
    redis_persistence_enabled: bool
    log_level: str
    auth_required: bool
    resources: Mapping[str, Mapping[str, str]]
    redis_resources: Mapping[str, Mapping[str, str]]
    # Over nodes and zones; soft everywhere: a hard spread leaves pods Pending on a small or
    # unlabelled cluster, which a preset should not do unasked.
    topology_spread: effective.SpreadMode
    # spec.tls.mode: Off in dev (plain http to a local fleet), Managed elsewhere.
    tls_mode: effective.TlsMode


def _resources(cpu: str, memory: str, memory_limit: str) -> Mapping[str, Mapping[str, str]]:
    # No CPU limit: throttling hurts latency more than it protects neighbours.
    return types.MappingProxyType(
        {
            "requests": types.MappingProxyType({"cpu": cpu, "memory": memory}),
            "limits": types.MappingProxyType({"memory": memory_limit}),
        }
    )


DEV = Preset(
    replicas=1,
    autoscaling_enabled=False,
    min_replicas=1,
    max_replicas=2,
    target_cpu_utilization_percentage=80,
    disruption_enabled=False,
    min_available=1,
    alerts_enabled=False,
    service_monitor_enabled=True,
    redis_persistence_enabled=False,
    log_level="debug",
    auth_required=True,
    resources=_resources("50m", "64Mi", "128Mi"),
    redis_resources=_resources("50m", "32Mi", "128Mi"),
    topology_spread=effective.SpreadMode.SOFT,
    tls_mode=effective.TlsMode.OFF,
)

STAGING = Preset(
    replicas=2,
    autoscaling_enabled=True,
    min_replicas=2,
    max_replicas=4,
    target_cpu_utilization_percentage=70,
    disruption_enabled=True,
    min_available=1,
    alerts_enabled=True,
    service_monitor_enabled=True,
    redis_persistence_enabled=True,
    log_level="info",
    auth_required=True,
    resources=_resources("100m", "128Mi", "256Mi"),
    redis_resources=_resources("50m", "64Mi", "256Mi"),
    topology_spread=effective.SpreadMode.SOFT,
    tls_mode=effective.TlsMode.MANAGED,
)

PRODUCTION = Preset(
    replicas=2,
    autoscaling_enabled=True,
    min_replicas=2,
    max_replicas=10,
    target_cpu_utilization_percentage=70,
    disruption_enabled=True,
    min_available=1,
    alerts_enabled=True,
    service_monitor_enabled=True,
    redis_persistence_enabled=True,
    log_level="info",
    auth_required=True,
    resources=_resources("250m", "256Mi", "512Mi"),
    redis_resources=_resources("100m", "128Mi", "512Mi"),
    topology_spread=effective.SpreadMode.SOFT,
    tls_mode=effective.TlsMode.MANAGED,
)

PRESETS: Mapping[config.Environment, Preset] = types.MappingProxyType(
    {
        config.Environment.DEV: DEV,
        config.Environment.STAGING: STAGING,
        config.Environment.PRODUCTION: PRODUCTION,
    }
)

# Values that do not depend on the environment.
SERVICE_MONITOR_INTERVAL = "30s"
ERROR_RATE_PERCENT = 5.0
P95_LATENCY_SECONDS = 2.0
AVAILABILITY_TARGET_PERCENT = 99.9
# spec.monitoring.slo: 99% of requests within 0.5 s (a bucket bound of the proxy's histogram), and
# no burn-rate alert while the long window saw less than one request every 10 s.
SLO_LATENCY_THRESHOLD_SECONDS = 0.5
SLO_LATENCY_PERCENT = 99.0
SLO_MIN_REQUESTS_PER_SECOND = 0.1
REDIS_PERSISTENCE_SIZE = "1Gi"
INGRESS_PATH = "/"
TRACING_SAMPLE_RATIO = 0.1
# spec.errorTracking is off unless set, in every environment (a DSN is the user's); set, no Sentry
# tracing: the proxies' traces are OpenTelemetry's (spec.tracing).
ERROR_TRACKING_TRACES_SAMPLE_RATE = 0.0


def for_environment(environment: config.Environment) -> Preset:
    """The preset of an environment."""
    return PRESETS[environment]


RUNBOOK_BASE_URL = "https://github.com/weather-proxy/weather-proxy-fleet/blob/main/docs/runbooks.md"
