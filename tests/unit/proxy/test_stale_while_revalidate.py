"""Freshness, stale-while-revalidate, stale-if-error, 503 and 504, coalescing of misses."""

from __future__ import annotations

import asyncio
import dataclasses

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import AppFactory, age_entry, refreshes_done
from weather_proxy.cache import entries

PARIS = "48.85,2.35"


async def test_stale_is_served_and_refreshed_in_background(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator
) -> None:
    async with proxy(cache={"ttlSeconds": 60, "staleTtlSeconds": 600}) as (app, client):
        await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
        age_entry(app, PARIS, 120)
        stale = await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
        await refreshes_done(app)
        refreshed = openmeteo.calls("forecast")
        fresh = await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
    assert stale.status_code == 200
    assert stale.headers["x-cache"] == "STALE"
    assert stale.json()["cache"] == {"status": "stale", "ageSeconds": 120, "stale": True}
    assert "max-age=0" in stale.headers["cache-control"]
    assert stale.headers["age"] == "120"
    assert refreshed == 2  # the first miss, then the background refresh
    assert fresh.headers["x-cache"] == "HIT"


async def test_stale_if_error_when_upstream_is_down(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator
) -> None:
    async with proxy() as (app, client):
        await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
        age_entry(app, PARIS, 400)
        openmeteo.set_fault("forecast", "error500")
        served = await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
        await refreshes_done(app)
        metrics = (await client.get("/metrics")).text
    assert served.status_code == 200
    assert served.json()["cache"]["stale"] is True
    assert 'weather_proxy_background_refreshes_total{result="failure"} 1.0' in metrics


async def test_nothing_stale_and_upstream_down_is_503(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator
) -> None:
    openmeteo.set_fault("forecast", "error502")
    async with proxy() as (_app, client):
        response = await client.get("/v1/weather", params={"lat": "1", "lon": "2"})
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == "application/problem+json"
    assert openmeteo.calls("forecast") == 2  # retried once (attempts: 2)
    assert 'weather_proxy_upstream_requests_total{endpoint="forecast",outcome="error"} 2.0' in metrics


async def test_expired_beyond_stale_window_is_a_miss(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator
) -> None:
    async with proxy(cache={"ttlSeconds": 10, "staleTtlSeconds": 10}) as (app, client):
        await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
        tiers = app.state.runtime.parts.service.tiers
        entry = tiers.weather_l1_get(PARIS)
        # Removed first: cachetools 5.3 keeps the old item when the new one is already expired.
        tiers.weather_l1.pop(PARIS)
        aged = dataclasses.replace(entry, fresh_until=0, stale_until=1)
        tiers.weather_l1[PARIS] = (aged, tiers.clock() + 60)
        response = await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
    assert response.headers["x-cache"] == "MISS"
    assert openmeteo.calls("forecast") == 2


async def test_deadline_is_504(proxy: AppFactory, openmeteo: om.OpenMeteoEmulator) -> None:
    openmeteo.set_fault("forecast", "slow", seconds=2)
    async with proxy(http={"requestTimeoutSeconds": 0.2}, upstream={"timeoutSeconds": 5}) as (_app, client):
        response = await client.get("/v1/weather", params={"lat": "1", "lon": "2"})
    openmeteo.clear_faults()
    assert response.status_code == 504
    assert response.json()["title"] == "Request deadline exceeded"


async def test_upstream_400_is_502(proxy: AppFactory, openmeteo: om.OpenMeteoEmulator) -> None:
    async with proxy() as (app, client):
        rt = app.state.runtime
        await rt.parts.service.weather(1, 2)  # warm the client
        rt.config = rt.config.model_copy(
            update={
                "upstream": rt.config.upstream.model_copy(update={"forecast_url": openmeteo.geocoding_url})
            }
        )
        response = await client.get("/v1/weather", params={"lat": "3", "lon": "4"})
    assert response.status_code == 502


async def test_concurrent_misses_make_one_upstream_call(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator
) -> None:
    openmeteo.set_fault("forecast", "slow", seconds=0.2)
    anonymous = {"requestsPerMinute": 60, "burst": 10}  # the default bucket holds 5
    async with proxy(rateLimit={"anonymous": anonymous}) as (_app, client):
        responses = await asyncio.gather(
            *(client.get("/v1/weather", params={"lat": "10", "lon": "20"}) for _ in range(8))
        )
        metrics = (await client.get("/metrics")).text
    assert {r.status_code for r in responses} == {200}
    assert openmeteo.calls("forecast") == 1
    assert 'weather_proxy_coalesced_requests_total{scope="process"} 7.0' in metrics


def test_weather_key_rounds_coordinates() -> None:
    assert entries.weather_key(48.8534, 2.3488) == entries.weather_key(48.85, 2.35) == "48.85,2.35"
    assert entries.geo_key(" Paris ", "fr") == "paris|FR"
