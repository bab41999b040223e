"""Identity of the custom resources and of the operator as a Kubernetes client."""

from __future__ import annotations

from weather_proxy import version

GROUP = "weatherproxy.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

WEATHERPROXY_KIND = "WeatherProxy"
WEATHERPROXY_PLURAL = "weatherproxies"
WEATHERPROXY_SINGULAR = "weatherproxy"
WEATHERPROXY_SHORT_NAMES = ("wp",)

APIKEY_KIND = "ApiKey"
APIKEY_PLURAL = "apikeys"
APIKEY_SINGULAR = "apikey"
APIKEY_SHORT_NAMES = ("wpk",)

CATEGORIES = ("weather",)

FIELD_MANAGER = "weather-operator"

# Used when neither the WeatherProxy nor the operator's settings name an image.
DEFAULT_PROXY_IMAGE = f"ghcr.io/weather-proxy/proxy:{version.VERSION}"
DEFAULT_REDIS_IMAGE = "redis:7.4-alpine"

# The pod-template annotation that carries the hash of the rendered config.yaml.
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
# The sha256 of a serving certificate on a pod template: a new certificate rolls the pods of a
# server that cannot reload its certificate in process.
TLS_FINGERPRINT_ANNOTATION = f"{GROUP}/tls-fingerprint"
