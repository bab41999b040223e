"""With a real redis-server: L2 sharing, fleet-wide limits in one round trip, locks, analytics, outage."""

from __future__ import annotations

import asyncio
import pathlib

import pytest
import redis.asyncio as aioredis

from devcluster import openmeteo as om
from tests.support.redis_server import RedisServer
from tests.unit.proxy.conftest import KEY, build_config, running
from weather_proxy import analytics, redis_link, settings
from weather_proxy import config as config_mod
from weather_proxy.cache import coalesce
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.ratelimit import limiter as limiter_mod


async def test_two_apps_share_l2_and_limits(
    openmeteo: om.OpenMeteoEmulator, redis_url: str, keys_file: pathlib.Path
) -> None:
    cfg = build_config(
        openmeteo, redis={"url": redis_url}, auth={"required": True, "keysFile": str(keys_file)}
    )
    headers = {"X-API-Key": KEY}
    async with running(cfg) as (_a, one), running(cfg) as (_b, two):
        first = await one.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        second = await two.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        third = await one.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        fourth = await two.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        limited = await one.get("/v1/weather", params={"city": "Paris"}, headers=headers)
        ready = (await one.get("/health/ready")).json()
        metrics = (await two.get("/metrics")).text
    assert first.headers["x-cache"] == "MISS"
    assert second.headers["x-cache"] == "HIT"  # from L2, written by the other app
    assert openmeteo.calls("forecast") == openmeteo.calls("search") == 1
    remaining = [int(r.headers["ratelimit-remaining"]) for r in (first, second, third, fourth)]
    assert remaining == [3, 2, 1, 0]  # one fleet-wide bucket of 4
    assert limited.status_code == 429
    assert ready["checks"]["redis"] == {"configured": True, "up": True, "error": None}
    assert ready["status"] == "ok"
    assert 'weather_proxy_cache_requests_total{result="hit",tier="l2"} 1.0' in metrics
    assert "weather_proxy_redis_up 1.0" in metrics


async def test_usage_is_fleet_wide_after_flush(
    openmeteo: om.OpenMeteoEmulator, redis_url: str, keys_file: pathlib.Path
) -> None:
    cfg = build_config(
        openmeteo, redis={"url": redis_url}, auth={"required": True, "keysFile": str(keys_file)}
    )
    async with running(cfg) as (app, client):
        await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
        assert await app.state.runtime.analytics.flush()
        usage = (await client.get("/v1/usage", headers={"X-API-Key": KEY})).json()
    assert usage["requests"]["scope"] == "fleet"
    assert usage["requests"]["requests"] == 1
    assert usage["requests"]["topCities"] == [{"city": "Paris", "requests": 1}]


async def test_limiter_reloads_its_script_after_a_script_flush(redis_url: str) -> None:
    client = redis_link.make_client(redis_url, None)
    link = redis_link.RedisLink(client, metrics_mod.Metrics())
    lim = limiter_mod.Limiter(link)
    limit = config_mod.Limit(requests_per_minute=2, burst=2)
    try:
        await client.script_flush()  # the first hit gets NOSCRIPT and loads the script
        decisions = [await lim.hit("key:x", limit) for _ in range(3)]
        peek = await lim.peek("key:x", limit)
    finally:
        await client.aclose()
    assert [d.allowed for d in decisions] == [True, True, False]
    assert [d.remaining for d in decisions] == [1, 0, 0]
    assert decisions[2].retry_after >= 29  # one token every 30 s
    assert peek.remaining == 0
    assert link.up


async def test_limits_fall_back_to_memory_when_redis_is_down() -> None:
    metrics = metrics_mod.Metrics()
    link = redis_link.RedisLink(redis_link.make_client("redis://127.0.0.1:1/0", None), metrics)
    link.up = True
    lim = limiter_mod.Limiter(link)
    limit = config_mod.Limit(requests_per_minute=1, burst=0)
    try:
        first = await lim.hit("key:y", limit)
        second = await lim.hit("key:y", limit)
        peek = await lim.peek("key:y", limit)
    finally:
        await link.aclose()
    assert first.allowed
    assert not second.allowed  # enforced locally
    assert peek.remaining == 0
    assert not link.up
    assert link.last_error is not None
    assert metrics.redis_up._value.get() == 0


async def test_app_serves_while_redis_is_down(
    openmeteo: om.OpenMeteoEmulator, redis_server: RedisServer, redis_url: str
) -> None:
    cfg = build_config(openmeteo, redis={"url": redis_url})
    async with running(cfg) as (app, client):
        await client.get("/v1/weather", params={"city": "Paris"})
        redis_server.kill()
        try:
            await app.state.runtime.link.ping()
            served = await client.get("/v1/weather", params={"city": "Paris"})
            miss = await client.get("/v1/weather", params={"city": "London"})
            ready = await client.get("/health/ready")
            flushed = await app.state.runtime.analytics.flush()
        finally:
            redis_server.restart()
    assert served.status_code == 200
    assert miss.status_code == 200
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["redis"]["up"] is False
    assert flushed is False


async def test_fleet_lock_token_and_waiting(redis_url: str) -> None:
    metrics = metrics_mod.Metrics()
    client = aioredis.Redis.from_url(redis_url)
    link = redis_link.RedisLink(client, metrics)
    lock = coalesce.FleetLock(link, metrics)
    try:
        token = await lock.acquire("k", 5)
        assert token
        assert await lock.acquire("k", 5) is None  # held by someone else
        assert not await lock.release("k", "not-my-token")
        assert await lock.release("k", token)
        values = iter([None, 1, 5])

        async def read() -> int | None:
            return next(values)

        assert await lock.wait_for(read, lambda v: v > 2, wait_seconds=1, interval=0.001) == 5

        async def never() -> int | None:
            return None

        assert await lock.wait_for(never, lambda v: True, wait_seconds=0.02, interval=0.005) is None
    finally:
        await client.aclose()
    no_redis = coalesce.FleetLock(redis_link.RedisLink(None, metrics), metrics)
    assert await no_redis.acquire("k", 1) == ""
    assert not await no_redis.release("k", "")


async def test_fleet_waiter_takes_the_holders_entry(openmeteo: om.OpenMeteoEmulator, redis_url: str) -> None:
    cfg = build_config(openmeteo, redis={"url": redis_url})
    async with running(cfg) as (a, one), running(cfg) as (_b, two):
        # App one holds the lock for the key, as if it were fetching; app two must wait, then read L2.
        token = await a.state.runtime.service.lock.acquire("10.00,20.00", 5)
        waiter = asyncio.create_task(two.get("/v1/weather", params={"lat": "10", "lon": "20"}))
        await asyncio.sleep(0.1)
        await one.get("/v1/weather", params={"lat": "10", "lon": "20"})  # lock busy: falls back after waiting
        response = await waiter
        await a.state.runtime.service.lock.release("10.00,20.00", token)
    assert response.status_code == 200
    assert openmeteo.calls("forecast") <= 2


async def test_analytics_without_redis_counts_locally() -> None:
    usage = analytics.UsageAnalytics(redis_link.RedisLink(None, metrics_mod.Metrics()))
    usage.record("k", "paris")
    usage.record("k", "Paris")
    usage.record("k", None)
    assert not await usage.flush()
    doc = await usage.usage("k")
    assert doc["requests"] == 3
    assert doc["topCities"] == [{"city": "Paris", "requests": 2}]
    assert doc["scope"] == "process"


def test_env_overrides_redis_url() -> None:
    cfg = settings.with_env(config_mod.ProxyConfig(), {"WEATHER_PROXY_REDIS_URL": "redis://r:6379/1"})
    assert cfg.redis is not None
    assert cfg.redis.url == "redis://r:6379/1"
    assert settings.with_env(cfg, {}) is cfg
    assert settings.redis_password({"REDIS_PASSWORD": "pw"}) == "pw"
    with pytest.raises(config_mod.ConfigError, match="WEATHER_PROXY_REDIS_URL"):
        settings.with_env(cfg, {"WEATHER_PROXY_REDIS_URL": "http://nope"})
