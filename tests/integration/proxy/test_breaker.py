"""The upstream circuit breaker: opens on failures, stops upstream calls, half-opens, closes."""

from __future__ import annotations

import asyncio

import httpx
import pybreaker
import pytest
import redis.asyncio as aioredis

from devcluster import openmeteo as om
from testbed import proxy_process
from tests.integration.proxy import scenario
from tests.unit.proxy.test_breaker_async import failing
from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import breaker as breaker_mod

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CITIES = ["Amsterdam", "Vienna", "Zurich", "Copenhagen", "Stockholm", "Helsinki", "Oslo", "Warsaw", "Prague"]


def _breaker_state(url: str) -> float | None:
    return scenario.metric_value(httpx.get(f"{url}/metrics").text, "weather_proxy_upstream_breaker_state")


def test_open_half_open_closed(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    proxy = proxy_factory(make_config(failure_threshold=3, reset_timeout=2.0), scenario.standard_keys())
    openmeteo.set_fault("all", "error500")
    cities = iter(CITIES)
    failures = [scenario.weather(proxy.url, city=next(cities)) for _ in range(3)]
    for r in failures:
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) >= 1
    assert scenario.wait_until(lambda: _breaker_state(proxy.url) == 2.0)
    assert "open" in httpx.get(f"{proxy.url}/health/ready").text

    # Open: requests fail fast and nothing reaches the upstream.
    calls_when_opened = openmeteo.calls()
    rejected = scenario.weather(proxy.url, city=next(cities))
    assert rejected.status_code == 503
    assert int(rejected.headers["retry-after"]) >= 1
    assert openmeteo.calls() == calls_when_opened

    # Upstream recovers; after the reset timeout a trial call closes the breaker.
    openmeteo.clear_faults()
    assert scenario.wait_until(
        lambda: scenario.weather(proxy.url, city=next(cities)).status_code == 200, timeout=10, interval=0.5
    )
    assert openmeteo.calls() > calls_when_opened
    assert _breaker_state(proxy.url) == 0.0
    assert scenario.weather(proxy.url, city="Paris").status_code == 200


def test_the_breaker_is_shared_by_the_fleet(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    config = make_config(failure_threshold=2, reset_timeout=30.0)
    first, second = (proxy_factory(config, scenario.standard_keys()) for _ in range(2))
    openmeteo.set_fault("all", "error500")
    for city in ("Amsterdam", "Vienna"):
        assert scenario.weather(first.url, city=city).status_code == 503
    assert scenario.wait_until(lambda: _breaker_state(second.url) == 2.0, timeout=10)
    before = openmeteo.calls()
    assert scenario.weather(second.url, city="Zurich").status_code == 503
    assert openmeteo.calls() == before


async def test_fleet_sync_through_redis(redis_url: str) -> None:
    cfg = config_mod.CircuitBreaker(failure_threshold=1, reset_timeout_seconds=30)
    one = breaker_mod.UpstreamBreaker(cfg, metrics_mod.Metrics())
    two = breaker_mod.UpstreamBreaker(cfg, metrics_mod.Metrics())
    client = aioredis.Redis.from_url(redis_url)
    one.redis = two.redis = client
    try:
        with pytest.raises(pybreaker.CircuitBreakerError), one.calling():
            await failing()
        await asyncio.gather(*one._tasks)
        assert await client.get(breaker_mod.FLEET_KEY) is not None
        await two.sync_once()
        assert two.state == "open"
        assert abs(two.retry_after() - one.retry_after()) <= 1
        # Replica one recovers (trial call succeeded): the key goes, replica two tries half-open.
        one.breaker.close()
        await asyncio.gather(*one._tasks)
        assert await client.get(breaker_mod.FLEET_KEY) is None
        await two.sync_once()
        assert two.state == "half-open"
        await one.aclose()
    finally:
        await client.aclose()


async def test_replicas_of_another_scope_keep_their_own_breaker(redis_url: str) -> None:
    """A blue/green candidate (its own WEATHER_PROXY_BREAKER_SCOPE) and the serving slot share no breaker."""
    cfg = config_mod.CircuitBreaker(failure_threshold=1, reset_timeout_seconds=30)
    candidate = breaker_mod.UpstreamBreaker(cfg, metrics_mod.Metrics(), scope="5d779cfb66")
    serving = breaker_mod.UpstreamBreaker(cfg, metrics_mod.Metrics(), scope="84c4975944")
    fleet = breaker_mod.UpstreamBreaker(cfg, metrics_mod.Metrics())
    client = aioredis.Redis.from_url(redis_url)
    candidate.redis = serving.redis = fleet.redis = client
    try:
        with pytest.raises(pybreaker.CircuitBreakerError), candidate.calling():
            await failing()
        await asyncio.gather(*candidate._tasks)
        assert await client.get(breaker_mod.fleet_key("5d779cfb66")) is not None
        await serving.sync_once()
        await fleet.sync_once()
        assert (serving.state, fleet.state) == ("closed", "closed")
        await candidate.aclose()
    finally:
        await client.delete(breaker_mod.fleet_key("5d779cfb66"))
        await client.aclose()
