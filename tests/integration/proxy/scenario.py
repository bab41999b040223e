"""Building blocks of the proxy integration scenarios: test keys, configs, small HTTP helpers.

Configs here are tuned for tests: short upstream timeouts, one quick retry, a breaker
that opens after a few failures and half-opens after a second.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

import httpx

from devcluster import openmeteo as om
from testbed import proxy_process
from weather_proxy import config as proxy_config

# Plaintext keys exist only in tests; the proxy sees their hashes (keys.yaml).
KEY_ALPHA = "wpk_alpha_7f3c9e2a1b4d4c8e9f00112233445566"
KEY_BETA = "wpk_beta_0a1b2c3d4e5f60718293a4b5c6d7e8f9"
KEY_EXPIRED = "wpk_expired_5566778899aabbccddeeff0011223344"
KEY_DISABLED = "wpk_disabled_99887766554433221100ffeeddccbbaa"
KEY_TINY = "wpk_tiny_13579bdf2468ace013579bdf2468ace0"
ALL_PLAINTEXT_KEYS = (KEY_ALPHA, KEY_BETA, KEY_EXPIRED, KEY_DISABLED, KEY_TINY)

TINY_LIMIT = proxy_config.Limit(requests_per_minute=3, burst=0)


def standard_keys(*, tiny_limit: proxy_config.Limit = TINY_LIMIT) -> proxy_config.KeysFile:
    """alpha (default limit), expired, disabled, and tiny (a very small limit)."""
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    return proxy_config.KeysFile(
        keys=[
            proxy_process.key_entry("weather/alpha", KEY_ALPHA),
            proxy_process.key_entry("weather/expired", KEY_EXPIRED, expires_at=past),
            proxy_process.key_entry("weather/disabled", KEY_DISABLED, disabled=True),
            proxy_process.key_entry("weather/tiny", KEY_TINY, rate_limit=tiny_limit),
        ]
    )


def build_config(
    emulator: om.OpenMeteoEmulator,
    redis: str | None,
    *,
    ttl: int = 300,
    stale_ttl: int = 3600,
    timeout: float = 2.0,
    attempts: int = 1,
    failure_threshold: int = 3,
    reset_timeout: float = 1.0,
    default_limit: proxy_config.Limit | None = None,
    auth_required: bool = True,
    request_timeout: float = 30.0,
    log_level: str = "info",
    **overrides: Any,
) -> proxy_config.ProxyConfig:
    """A test config pointing at ``emulator`` (and Redis when ``redis`` is a URL)."""
    upstream = proxy_config.Upstream(
        geocoding_url=emulator.geocoding_url,
        forecast_url=emulator.forecast_url,
        timeout_seconds=timeout,
        retries=proxy_config.Retries(
            attempts=attempts, backoff_initial_seconds=0.05, backoff_max_seconds=0.1
        ),
        circuit_breaker=proxy_config.CircuitBreaker(
            failure_threshold=failure_threshold, reset_timeout_seconds=reset_timeout
        ),
    )
    fields: dict[str, Any] = {
        "environment": proxy_config.Environment.DEV,
        "upstream": upstream,
        "cache": proxy_config.Cache(ttl_seconds=ttl, stale_ttl_seconds=stale_ttl),
        "redis": proxy_config.Redis(url=redis) if redis else None,
        "auth": proxy_config.Auth(required=auth_required),
        "rate_limit": proxy_config.RateLimit(
            default=default_limit or proxy_config.Limit(requests_per_minute=10_000, burst=1000)
        ),
        "http": proxy_config.Http(request_timeout_seconds=request_timeout),
        "observability": proxy_config.Observability(log_level=log_level),
    }
    fields.update(overrides)
    return proxy_config.ProxyConfig(**fields)


ConfigBuilder = Callable[..., proxy_config.ProxyConfig]


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of one sample in a Prometheus text exposition (None when absent)."""
    want = labels or {}
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric != name:
            continue
        found = dict(part.split("=", 1) for part in label_text.rstrip("}").split(",") if "=" in part)
        found = {k: v.strip('"') for k, v in found.items()}
        if all(found.get(k) == v for k, v in want.items()):
            return float(value)
    return None


def redis_up(base_url: str) -> float | None:
    """The proxy's ``weather_proxy_redis_up`` gauge: 1.0 once its Redis link is usable."""
    return metric_value(httpx.get(f"{base_url}/metrics").text, "weather_proxy_redis_up")


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def weather(base_url: str, key: str | None = KEY_ALPHA, **params: Any) -> httpx.Response:
    """GET /v1/weather with ``params`` and, unless None, the X-API-Key header."""
    headers = {"X-API-Key": key} if key else {}
    return httpx.get(f"{base_url}/v1/weather", params=params, headers=headers, timeout=30)
