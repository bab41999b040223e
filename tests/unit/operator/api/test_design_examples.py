"""Full WeatherProxy and ApiKey examples, every section spelled out, are valid as written."""

from __future__ import annotations

import datetime

import yaml

from weather_operator.api import apikey, conditions, resolve, weatherproxy
from weather_proxy import config

WEATHERPROXY_EXAMPLE = """
spec:
  environment: production          # dev | staging | production: presets for defaults below
  image: ghcr.io/weather-proxy/proxy:0.1.0   # defaulted from the operator's settings
  replicas: 2                      # used when autoscaling is off; scale subresource points here
  autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70}
  disruption: {minAvailable: 1}    # or maxUnavailable
  resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}
  auth: {required: true}
  redis:
    mode: Managed                  # Managed: operator runs Redis; External: use urlSecretRef
    managed: {image: redis:7.4-alpine, persistence: {enabled: true, size: 1Gi, storageClassName: null}}
    external: {urlSecretRef: {name: my-redis, key: url}}
  monitoring:
    serviceMonitor: {enabled: true, interval: 30s}
    alerts: {enabled: true, errorRatePercent: 5, p95LatencySeconds: 2}
  tracing: {otlpEndpoint: null, sampleRatio: 0.1}
  ingress: {enabled: false, host: null, className: null, tlsSecretName: null, annotations: {}}
status:
  observedGeneration: 3
  replicas: 2
  readyReplicas: 2
  selector: app.kubernetes.io/instance=paris   # for the scale subresource / HPA
  apiKeys: 4
  endpoint: http://paris.weather.svc:8080
  configHash: 1a2b3c
  conditions:                      # metav1.Condition shape
    - {type: Ready, status: "True", reason: AllReplicasReady, message: ..., observedGeneration: 3,
       lastTransitionTime: 2026-11-26T10:00:00Z}
"""

APIKEY_EXAMPLE = """
spec:
  proxyRef: {name: paris}          # a WeatherProxy in the same namespace
  description: "mobile app, team A"
  rateLimit: {requestsPerMinute: 600, burst: 60}   # optional
  expiresAt: 2027-01-01T00:00:00Z  # optional
  disabled: false
  secretName: team-a-key           # optional; the Secret holding the plaintext key
status:
  secretName: team-a-key
  keyPrefix: wpk_3fa9              # enough to recognise a key, never the key
  conditions: [{type: Ready, status: "True", reason: KeyReady, lastTransitionTime: 2026-11-26T10:00:00Z}]
"""

# The config.yaml sections (docs/config-reference.md), as a WeatherProxy spec takes them.
CONFIG_SECTIONS = """
upstream:
  geocodingUrl: https://geocoding-api.open-meteo.com/v1/search
  forecastUrl: https://api.open-meteo.com/v1/forecast
  timeoutSeconds: 5
  retries: {attempts: 3, backoffInitialSeconds: 0.2, backoffMaxSeconds: 2}
  circuitBreaker: {failureThreshold: 5, resetTimeoutSeconds: 30}
  pool: {maxConnections: 100, maxKeepalive: 20, keepaliveExpirySeconds: 30}
cache:
  ttlSeconds: 300
  staleTtlSeconds: 3600
  memory: {maxEntries: 10000, ttlSeconds: 60}
  warmCities: [Paris, London]
rateLimit:
  default: {requestsPerMinute: 100, burst: 20}
  anonymous: {requestsPerMinute: 10, burst: 5}
http:
  requestTimeoutSeconds: 30
  cors: {allowOrigins: []}
  trustedHosts: ["*"]
  gzipMinimumSize: 1000
"""


def test_weatherproxy_example_is_valid() -> None:
    doc = yaml.safe_load(WEATHERPROXY_EXAMPLE)
    spec = weatherproxy.WeatherProxySpec.model_validate(doc["spec"])
    status = weatherproxy.WeatherProxyStatus.model_validate(doc["status"])
    assert spec.environment is config.Environment.PRODUCTION
    assert spec.autoscaling is not None
    assert spec.autoscaling.target_cpu_utilization_percentage == 70
    assert spec.redis is not None
    assert spec.redis.mode is weatherproxy.RedisMode.MANAGED
    assert status.conditions is not None
    assert status.conditions[0].status is conditions.ConditionStatus.TRUE
    assert status.selector == "app.kubernetes.io/instance=paris"


def test_weatherproxy_round_trips_through_camel_case() -> None:
    doc = yaml.safe_load(WEATHERPROXY_EXAMPLE)["spec"]
    spec = weatherproxy.WeatherProxySpec.model_validate(doc)
    again = weatherproxy.WeatherProxySpec.model_validate(spec.to_camel_dict())
    assert again == spec
    assert "targetCPUUtilizationPercentage" in spec.to_camel_dict()["autoscaling"]


def test_config_sections_of_design_4_are_valid_in_a_spec() -> None:
    spec = weatherproxy.WeatherProxySpec.model_validate(yaml.safe_load(CONFIG_SECTIONS))
    assert spec.cache is not None
    assert spec.cache.warm_cities == ["Paris", "London"]
    assert resolve.effective(spec).rate_limit.default.requests_per_minute == 100


def test_apikey_example_is_valid() -> None:
    doc = yaml.safe_load(APIKEY_EXAMPLE)
    spec = apikey.ApiKeySpec.model_validate(doc["spec"])
    status = apikey.ApiKeyStatus.model_validate(doc["status"])
    assert spec.proxy_ref.name == "paris"
    assert spec.expires_at == datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC)
    assert spec.rate_limit == config.Limit(requests_per_minute=600, burst=60)
    assert spec.rotation is None
    assert spec.rotation_grace_period_seconds == 3600
    assert status.key_prefix == "wpk_3fa9"
