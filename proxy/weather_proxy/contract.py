"""What the operator and the proxy agree on, spelled once: the operator imports it from here.

The operator renders pods that the proxy must understand: the environment variables the
proxy reads, where config.yaml and keys.yaml are mounted, the Secret keys they come from,
the port and paths the kubelet probes and Prometheus scrapes, the hash a keys.yaml entry
holds, and the series its PrometheusRule queries. Changing a value here changes both
sides; nothing else in either package spells them.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Mapping

# Environment variables the proxy reads (``weather_proxy.settings``).
ENV_CONFIG = "WEATHER_PROXY_CONFIG"
ENV_REDIS_URL = "WEATHER_PROXY_REDIS_URL"
ENV_REDIS_PASSWORD = "REDIS_PASSWORD"  # noqa: S105  # nosec B105 - the variable's name, not a password
ENV_ANALYTICS_URL = "WEATHER_PROXY_ANALYTICS_DATABASE_URL"
ENV_ANALYTICS_PASSWORD = "ANALYTICS_DATABASE_PASSWORD"  # noqa: S105  # nosec B105 - a variable name
# Error reports (spec.errorTracking): the DSN (from the user's Secret), the environment they are
# filed under and Sentry's trace sample rate; the Sentry SDKs' own names for them.
ENV_SENTRY_DSN = "SENTRY_DSN"
ENV_SENTRY_ENVIRONMENT = "SENTRY_ENVIRONMENT"
ENV_SENTRY_TRACES_SAMPLE_RATE = "SENTRY_TRACES_SAMPLE_RATE"
# Server processes (``weather_proxy.cpus``, ``weather_proxy.server``): their count (overrides
# config.yaml's workers), the CPU request in millicores that sets the default when the container
# has no CPU limit (the Downward API's requests.cpu with divisor 1m), and the directory of their
# metric files (prometheus-client's own name; default /tmp/weather-proxy-metrics).
ENV_WORKERS = "WEATHER_PROXY_WORKERS"
ENV_CPU_REQUEST_MILLICORES = "WEATHER_PROXY_CPU_REQUEST_MILLICORES"
ENV_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The scope of the fleet-wide circuit breaker state in Redis (empty: the whole fleet's). The operator
# sets it on a blue/green slot's pods to their ReplicaSet's pod-template-hash, so that a candidate
# neither trips the serving slot's breaker nor inherits one (docs/rollouts.md).
ENV_BREAKER_SCOPE = "WEATHER_PROXY_BREAKER_SCOPE"

# Files: config.yaml from the fleet's ConfigMap, keys.yaml from its keys Secret (data key = file name).
CONFIG_FILE = "config.yaml"
KEYS_FILE = "keys.yaml"
CONFIG_DIR = "/etc/weather-proxy"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_FILE}"
KEYS_DIR = f"{CONFIG_DIR}/keys"
KEYS_PATH = f"{KEYS_DIR}/{KEYS_FILE}"
# A ServiceAccount's credentials in a pod (token, ca.crt, namespace): the operator mounts them here.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# The data key of an ApiKey's own Secret holding the plaintext key (what consumers read).
APIKEY_SECRET_KEY = "apiKey"  # noqa: S105  # nosec B105 - a data key name

# HTTP: one port serves the API, the probes and the metrics.
HTTP_PORT = 8080
LIVENESS_PATH = "/health/live"
READINESS_PATH = "/health/ready"
METRICS_PATH = "/metrics"

# Series the operator's PrometheusRule queries (``weather_proxy.observability.metrics`` exports them).
METRIC_HTTP_REQUESTS_TOTAL = "weather_proxy_http_requests_total"  # a counter
METRIC_HTTP_REQUEST_DURATION = "weather_proxy_http_request_duration_seconds"  # a histogram (_bucket)
METRIC_UPSTREAM_BREAKER_STATE = "weather_proxy_upstream_breaker_state"
METRIC_REDIS_UP = "weather_proxy_redis_up"
METRIC_CONFIG_RELOAD_SUCCESS = "weather_proxy_config_reload_success"
METRIC_KEYS_WATCH_CONNECTED = "weather_proxy_keys_watch_connected"
METRIC_UPSTREAM_BUDGET_USED = "weather_proxy_upstream_budget_used_ratio"
# notAfter (unix seconds) of the leaf certificate served with listen.tls; absent without TLS.
METRIC_TLS_CERTIFICATE_EXPIRY = "weather_proxy_tls_certificate_expiry_timestamp_seconds"
# The values of METRIC_UPSTREAM_BREAKER_STATE.
BREAKER_STATE_VALUES: Mapping[str, int] = types.MappingProxyType({"closed": 0, "half-open": 1, "open": 2})
# A keys.yaml entry's id with this suffix is a rotated key's previous hash, accepted until its
# grace ends: the same consumer as the id without it (one bucket, one quota, one history).
GRACE_ENTRY_SUFFIX = "#previous"


def key_sha256(plaintext: str) -> str:
    """What a keys.yaml entry holds and the proxy compares: hex SHA-256 of the UTF-8 key."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()
