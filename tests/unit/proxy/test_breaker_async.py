"""The circuit breaker really opens on async calls, rejects while open, and syncs through Redis."""

from __future__ import annotations

import asyncio

import pybreaker
import pytest

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import AppFactory
from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import breaker as breaker_mod


async def failing() -> None:
    await asyncio.sleep(0)
    raise breaker_mod.TransientFailure("boom")


async def test_opens_after_threshold_of_awaited_failures() -> None:
    metrics = metrics_mod.Metrics()
    b = breaker_mod.UpstreamBreaker(
        config_mod.CircuitBreaker(failure_threshold=2, reset_timeout_seconds=30), metrics
    )
    with pytest.raises(breaker_mod.TransientFailure), b.calling():
        await failing()
    assert b.state == "closed"
    with pytest.raises(pybreaker.CircuitBreakerError), b.calling():
        await failing()
    assert b.state == "open"
    assert metrics.breaker_state._value.get() == 2
    with pytest.raises(pybreaker.CircuitBreakerError), b.calling():
        raise AssertionError("never runs while open")
    assert 25 <= b.retry_after() <= 30


async def test_non_transient_errors_do_not_count() -> None:
    b = breaker_mod.UpstreamBreaker(config_mod.CircuitBreaker(failure_threshold=1), metrics_mod.Metrics())
    with pytest.raises(ValueError, match="bad input"), b.calling():
        raise ValueError("bad input")
    assert b.state == "closed"
    b.reconfigure(config_mod.CircuitBreaker(failure_threshold=9, reset_timeout_seconds=1))
    assert b.breaker.fail_max == 9
    assert b.retry_after() == 1


async def test_http_breaker_opens_and_rejects(proxy: AppFactory, openmeteo: om.OpenMeteoEmulator) -> None:
    openmeteo.set_fault("forecast", "error500")
    async with proxy() as (_app, client):
        statuses = [
            (await client.get("/v1/weather", params={"lat": str(i), "lon": "1"})).status_code
            for i in range(5)
        ]
        calls_when_open = openmeteo.calls("forecast")
        rejected = await client.get("/v1/weather", params={"lat": "50", "lon": "1"})
        ready = (await client.get("/health/ready")).json()
        metrics = (await client.get("/metrics")).text
    assert statuses == [503] * 5
    assert calls_when_open == 3 * 2  # threshold 3 requests x 2 attempts, then no more calls
    assert openmeteo.calls("forecast") == calls_when_open
    assert int(rejected.headers["retry-after"]) > 1
    assert ready["checks"]["upstream"]["breaker"] == "open"
    assert ready["status"] == "degraded"
    assert "weather_proxy_upstream_breaker_state 2.0" in metrics
    assert 'outcome="rejected"' in metrics
