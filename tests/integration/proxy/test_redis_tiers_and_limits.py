"""With a real redis-server: L2 sharing, fleet-wide limits in one round trip, locks, analytics, outage."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest
import redis.asyncio as aioredis

from devcluster import openmeteo as om
from testbed.redis_server import RedisServer
from tests.unit.proxy.conftest import KEY, build_config, keys_file, running  # noqa: F401
from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.cache import coalesce, entries
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.ratelimit import limiter as limiter_mod

pytestmark = pytest.mark.integration


async def test_two_apps_share_l2_and_limits(
    openmeteo: om.OpenMeteoEmulator,
    redis_url: str,
    keys_file: pathlib.Path,  # noqa: F811
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
    openmeteo: om.OpenMeteoEmulator,
    redis_url: str,
    keys_file: pathlib.Path,  # noqa: F811
) -> None:
    cfg = build_config(
        openmeteo, redis={"url": redis_url}, auth={"required": True, "keysFile": str(keys_file)}
    )
    async with running(cfg) as (app, client):
        await client.get("/v1/weather", params={"city": "Paris"}, headers={"X-API-Key": KEY})
        assert await app.state.runtime.parts.analytics.flush()
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


async def test_app_serves_while_redis_is_down(
    openmeteo: om.OpenMeteoEmulator, redis_server: RedisServer, redis_url: str
) -> None:
    cfg = build_config(openmeteo, redis={"url": redis_url})
    async with running(cfg) as (app, client):
        await client.get("/v1/weather", params={"city": "Paris"})
        redis_server.kill()
        try:
            await app.state.runtime.parts.link.ping()
            served = await client.get("/v1/weather", params={"city": "Paris"})
            miss = await client.get("/v1/weather", params={"city": "London"})
            ready = await client.get("/health/ready")
            flushed = await app.state.runtime.parts.analytics.flush()
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


async def test_fleet_waiter_takes_the_holders_entry(
    openmeteo: om.OpenMeteoEmulator, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = build_config(openmeteo, redis={"url": redis_url})
    key = entries.weather_key(10, 20)
    async with running(cfg) as (a, _one), running(cfg) as (b, two):
        holder, waiter_service = a.state.runtime.parts.service, b.state.runtime.parts.service
        waiting = asyncio.Event()
        wait_for = waiter_service.lock.wait_for

        async def wait_for_seen(*args: Any, **kwargs: Any) -> Any:
            waiting.set()
            return await wait_for(*args, **kwargs)

        monkeypatch.setattr(waiter_service.lock, "wait_for", wait_for_seen)
        # App one holds the lock for the key, as a replica fetching it does; app two must wait for it.
        token = await holder.lock.acquire(key, 5)
        waiter = asyncio.create_task(two.get("/v1/weather", params={"lat": "10", "lon": "20"}))
        await waiting.wait()
        # The holder's fetch: the entry into L2, then the lock released (what _fetch_weather does).
        current = await holder.client.forecast(10.0, 20.0)
        entry = entries.WeatherEntry.from_current(current, holder.clock(), 300, 3600)
        await holder.tiers.weather_put(key, entry)
        await holder.lock.release(key, token)
        response = await waiter
    assert response.status_code == 200
    assert response.json()["current"] == current.to_json()  # the holder's entry
    assert openmeteo.calls("forecast") == 1  # the holder's call only: the waiter made none
