"""Fleet coalescing under bursts: bounded Redis pool, busy is not down, shared reads, double-checked locks."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import build_config, running
from weather_proxy import redis_link
from weather_proxy.cache import coalesce, entries
from weather_proxy.observability import metrics as metrics_mod

pytestmark = pytest.mark.integration


async def _calls(client: aioredis.Redis, command: str) -> int:
    stats = await client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def _connections(client: aioredis.Redis) -> int:
    return len(await client.client_list())


async def test_an_exhausted_pool_is_busy_not_down(redis_url: str) -> None:
    metrics = metrics_mod.Metrics()
    client = redis_link.make_client(redis_url, None, max_connections=1, pool_timeout=0.05)
    link = redis_link.RedisLink(client, metrics)
    lock = coalesce.FleetLock(link, metrics)
    try:
        assert await link.ping()
        held = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            token = await lock.acquire("busy-key", 5)
        finally:
            await client.connection_pool.release(held)
        assert token == ""  # still busy after its retries: the caller proceeds alone ...
        assert link.up  # ... but Redis is not marked down for the rest of the process
        assert link.usable
        assert link.busy_errors == coalesce.ACQUIRE_ATTEMPTS
        assert metrics.redis_busy._value.get() == coalesce.ACQUIRE_ATTEMPTS
        assert await lock.acquire("busy-key", 5)  # a connection is free again
    finally:
        await client.aclose()


async def test_warm_up_opens_pooled_connections(redis_url: str) -> None:
    observer = aioredis.Redis.from_url(redis_url)
    client = redis_link.make_client(redis_url, None)
    link = redis_link.RedisLink(client, metrics_mod.Metrics())
    try:
        before = await _connections(observer)
        assert await link.warm_up(5) == 5
        assert await _connections(observer) - before == 5
        assert await redis_link.RedisLink(None, metrics_mod.Metrics()).warm_up() == 0
    finally:
        await client.aclose()
        await observer.aclose()


async def test_concurrent_misses_of_a_process_share_one_l2_read(
    openmeteo: om.OpenMeteoEmulator, redis_url: str
) -> None:
    cfg = build_config(openmeteo, redis={"url": redis_url})
    observer = aioredis.Redis.from_url(redis_url)
    try:
        async with running(cfg) as (_a, one), running(cfg) as (b, _two):
            assert (await one.get("/v1/weather", params={"city": "Paris"})).status_code == 200
            service = b.state.runtime.parts.service
            gets = await _calls(observer, "get")
            places = await asyncio.gather(*(service.locate("Paris", None) for _ in range(30)))
            loc = places[0].location
            served = await asyncio.gather(*(service.weather(loc.latitude, loc.longitude) for _ in range(30)))
            gets = await _calls(observer, "get") - gets
            l2_hits = b.state.runtime.metrics.l2_hit._value.get()
    finally:
        await observer.aclose()
    assert {p.location for p in places} == {loc}
    assert {status for _entry, status in served} == {"hit"}
    assert gets == 2  # one geocoding and one weather read for 30 + 30 lookups
    assert l2_hits == 30  # every lookup is still counted as an L2 hit
    assert openmeteo.calls("search") == openmeteo.calls("forecast") == 1


@pytest.mark.parametrize("what", ["geocoding", "weather"])
async def test_the_lock_holder_checks_l2_again(
    openmeteo: om.OpenMeteoEmulator, redis_url: str, what: str
) -> None:
    """A replica that wrote the entry and released its lock between our L2 read and our lock spares a call."""
    cfg = build_config(openmeteo, redis={"url": redis_url})
    async with running(cfg) as (_a, one), running(cfg) as (b, _two):
        await one.get("/v1/weather", params={"city": "Paris"})  # the other replica's work, in L2
        searches, forecasts = openmeteo.calls("search"), openmeteo.calls("forecast")
        service = b.state.runtime.parts.service
        if what == "geocoding":
            geo = await service._fetch_geo(entries.geo_key("Paris", None), "Paris", None)
            assert geo.location is not None
            assert geo.location.name == "Paris"
        else:
            loc = (await service.locate("Paris", None)).location
            key = entries.weather_key(loc.latitude, loc.longitude)
            entry = await service._fetch_weather(key, loc.latitude, loc.longitude)
            assert entry.fresh_until > entry.fetched_at
        assert not await service.lock.release("geo:paris|", "x")  # the lock was released
    assert (openmeteo.calls("search"), openmeteo.calls("forecast")) == (searches, forecasts)
