"""Several proxy processes sharing one Redis behave as one fleet: coalescing and limits."""

from __future__ import annotations

import asyncio
import math
import time

import httpx
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from tests.integration.proxy import scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def _burst(urls: list[str], n: int, key: str, params: dict[str, str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n + 10)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(
                client.get(f"{urls[i % len(urls)]}/v1/weather", params=params, headers={"X-API-Key": key})
                for i in range(n)
            )
        )


async def test_concurrent_misses_across_three_processes_make_one_upstream_call_each(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    config = make_config(timeout=10.0)
    fleet = [proxy_factory(config, scenario.standard_keys()) for _ in range(3)]
    # Slow upstream: every request arrives while the first upstream call is in flight. The cold
    # burst of 200 (as in the bench) queues on each process's bounded Redis pool instead of opening
    # a connection per request, and a busy pool does not mark Redis down (no fail-open).
    openmeteo.set_fault("all", "slow", seconds=0.5)
    responses = await _burst([p.url for p in fleet], 200, scenario.KEY_ALPHA, {"city": "Berlin"})
    assert [r.status_code for r in responses] == [200] * 200
    assert openmeteo.calls("search") == 1
    assert openmeteo.calls("forecast") == 1
    assert len({r.json()["current"]["temperatureC"] for r in responses}) == 1
    assert {r.headers["x-cache"] for r in responses} <= {"MISS", "HIT"}


async def test_a_keys_limit_is_shared_by_the_fleet(
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    limit = scenario.TINY_LIMIT.model_copy(update={"requests_per_minute": 6, "burst": 6})
    keys = scenario.standard_keys(tiny_limit=limit)
    config = make_config()
    fleet = [proxy_factory(config, keys) for _ in range(3)]
    responses = []
    started = time.monotonic()
    for i in range(18):  # sequential and round-robin: each process alone would allow 6 at once
        responses.append(scenario.weather(fleet[i % 3].url, scenario.KEY_TINY, city="Paris"))
    refilled = math.floor((time.monotonic() - started) * limit.requests_per_minute / 60)
    statuses = [r.status_code for r in responses]
    # One bucket of 6 for the fleet, plus what refilled while the requests ran.
    assert limit.capacity <= statuses.count(200) <= limit.capacity + refilled
    assert statuses.count(429) >= 18 - limit.capacity - refilled
    remaining = [int(r.headers["ratelimit-remaining"]) for r in responses if r.status_code == 200]
    assert remaining[: limit.capacity] == list(range(limit.capacity - 1, -1, -1))
