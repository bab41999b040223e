"""Figure 3: upstream calls per 10,000 requests over a Zipf workload vs. the unavoidable minimum.

1,000 synthetic cities, popularity Zipf(s=1.1), fixed seed; requests spread round-robin
over 3 proxy processes sharing Redis, a fixed number in flight. The minimum is counted
from the request log with an ideal shared cache: a city costs one geocode ever, and one
forecast per TTL window (a window opens at the first request after the last one closed).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import pathlib
import random
import time

import httpx

from bench import fleet
from devcluster import openmeteo as om


@dataclasses.dataclass(frozen=True)
class ZipfResult:
    requests: int
    statuses: dict[int, int]
    distinct_cities: int
    ideal_windows: int
    geocode_calls: int
    forecast_calls: int
    ttl: int

    def lines(self) -> list[str]:
        per_10k = (self.geocode_calls + self.forecast_calls) * 10_000 / self.requests
        return [
            f"3. Zipf workload: {self.requests} requests, 1,000 cities, s=1.1, TTL {self.ttl}s, 3 processes",
            f"  responses: {dict(sorted(self.statuses.items()))}",
            f"  distinct cities requested:             {self.distinct_cities}",
            f"  distinct (city, TTL window) pairs:     {self.ideal_windows}",
            f"  upstream geocode calls:                {self.geocode_calls}   "
            f"(redundant: {self.geocode_calls - self.distinct_cities})",
            f"  upstream forecast calls:               {self.forecast_calls}   "
            f"(redundant: {self.forecast_calls - self.ideal_windows})",
            f"  upstream calls per 10,000 requests:    {per_10k:.0f}",
        ]


def workload(n: int, cities: int = 1000, s: float = 1.1, seed: int = 20261126) -> list[str]:
    rng = random.Random(seed)
    names = [f"benchcity-{i:04d}" for i in range(cities)]
    weights = [1 / (rank + 1) ** s for rank in range(cities)]
    return rng.choices(names, weights=weights, k=n)


def ideal_windows(log: list[tuple[float, str]], ttl: float) -> int:
    opened: dict[str, float] = {}
    windows = 0
    for at, city in sorted(log):
        if city not in opened or at >= opened[city] + ttl:
            opened[city] = at
            windows += 1
    return windows


async def _drive(
    urls: list[str], cities: list[str], concurrency: int
) -> tuple[list[int], list[tuple[float, str]]]:
    queue = collections.deque(enumerate(cities))
    statuses: list[int] = []
    log: list[tuple[float, str]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while queue:
            i, city = queue.popleft()
            log.append((time.monotonic(), city))
            r = await client.get(
                f"{urls[i % len(urls)]}/v1/weather", params={"city": city}, headers={"X-API-Key": fleet.KEY}
            )
            statuses.append(r.status_code)

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency + 10), timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses, log


def run(
    workdir: pathlib.Path, *, requests: int = 10_000, ttl: int = 300, concurrency: int = 32
) -> ZipfResult:
    cities = workload(requests)
    with om.OpenMeteoEmulator(synthetic_cities=True) as emulator, fleet.redis() as redis:
        with fleet.proxies(workdir, fleet.config(emulator, redis.url, ttl=ttl), 3) as procs:
            emulator.set_fault("all", "slow", seconds=0.02)  # a little upstream latency, as in life
            statuses, log = asyncio.run(_drive([p.url for p in procs], cities, concurrency))
        return ZipfResult(
            requests=requests,
            statuses=dict(collections.Counter(statuses)),
            distinct_cities=len(set(cities)),
            ideal_windows=ideal_windows(log, ttl),
            geocode_calls=emulator.calls("search"),
            forecast_calls=emulator.calls("forecast"),
            ttl=ttl,
        )
