"""Figure 2: upstream calls made for 200 concurrent misses on one city across 3 proxy processes.

The emulator answers after a delay (as a real upstream does), so every request arrives
while the first upstream call is in flight. Target: exactly 1 geocode + 1 forecast.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import pathlib

import httpx

from bench import fleet
from devcluster import openmeteo as om


@dataclasses.dataclass(frozen=True)
class Coalescing:
    requests: int
    statuses: dict[int, int]
    geocode_calls: int
    forecast_calls: int

    def lines(self) -> list[str]:
        return [
            f"2. Coalescing: {self.requests} concurrent misses on one city, 3 processes, one Redis",
            f"  responses: {dict(sorted(self.statuses.items()))}",
            f"  upstream calls: geocode {self.geocode_calls}, forecast {self.forecast_calls}"
            "   (target 1 + 1)",
        ]


async def _fire(urls: list[str], n: int) -> list[int]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=n + 10), timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.get(
                    f"{urls[i % len(urls)]}/v1/weather",
                    params={"city": "Berlin"},
                    headers={"X-API-Key": fleet.KEY},
                )
                for i in range(n)
            )
        )
    return [r.status_code for r in responses]


def run(workdir: pathlib.Path, *, requests: int = 200, upstream_delay: float = 0.3) -> Coalescing:
    with om.OpenMeteoEmulator() as emulator, fleet.redis() as redis:
        with fleet.proxies(workdir, fleet.config(emulator, redis.url), 3) as procs:
            emulator.set_fault("all", "slow", seconds=upstream_delay)
            statuses = asyncio.run(_fire([p.url for p in procs], requests))
        return Coalescing(
            requests,
            dict(collections.Counter(statuses)),
            emulator.calls("search"),
            emulator.calls("forecast"),
        )
