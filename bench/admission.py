"""Figure 4: how exactly three processes sharing one Redis hold a key's token bucket.

One key with ``{requestsPerMinute: R, burst: B}`` is hammered through three real
proxy processes (round-robin, several requests in flight per process, cached
city) for a bit more than a minute, so the bucket is empty nearly all the time
and every process takes leases. From the client's log of 200s it prints:

* the most 200s in any 60 s window against the contract's bound ``R + B``
  (over-admission, the leases' documented bound is ``R x TTL / 60`` = 1% of R);
* the 200s of the whole run against what an exact token bucket admits to a
  client that never stops asking: ``B + R x T / 60`` (under-admission: tokens
  taken by a lease and never served).
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import time

import httpx

from bench import fleet
from devcluster import openmeteo as om
from tests.support import proxy_process
from weather_proxy import config as proxy_config
from weather_proxy.ratelimit import lease

PROCESSES = 3
IN_FLIGHT_PER_PROCESS = 8
LIMIT = proxy_config.Limit(requests_per_minute=12_000, burst=200)


@dataclasses.dataclass
class Result:
    seconds: float
    sent: int
    admitted: int
    refused: int
    worst_minute: int
    exact: float

    def lines(self) -> list[str]:
        rate, burst = LIMIT.requests_per_minute, LIMIT.capacity
        bound = rate + burst
        leeway = rate * lease.TTL_SECONDS / 60
        return [
            f"4. token bucket {rate}/min, burst {burst}, {PROCESSES} processes on one Redis, "
            f"{self.seconds:.1f} s, {self.sent} requests ({self.sent / self.seconds:.0f}/s offered), "
            f"{self.admitted} admitted, {self.refused} refused (429)",
            f"4. most admitted in any 60 s: {self.worst_minute} vs rate + burst {bound}: over-admission "
            f"{self.worst_minute - bound:+d} ({(self.worst_minute - bound) / rate:+.2%} of the rate; "
            f"documented bound +{leeway:.0f})",
            f"4. admitted over the run: {self.admitted} vs exact token bucket {self.exact:.0f}: "
            f"{self.admitted - self.exact:+.0f} ({(self.admitted - self.exact) / rate:+.2%} of the rate)",
        ]


def _worst_minute(moments: list[float]) -> int:
    best, start = 0, 0
    for end, moment in enumerate(moments):
        while moment - moments[start] >= 60:
            start += 1
        best = max(best, end - start + 1)
    return best


async def _hammer(urls: list[str], seconds: float) -> tuple[list[float], int, int, float, float]:
    admitted: list[float] = []
    refused = sent = 0
    headers = {"X-API-Key": fleet.KEY}
    limits = httpx.Limits(max_connections=IN_FLIGHT_PER_PROCESS * PROCESSES)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        for url in urls:  # cache the city first (through the bucket too)
            await client.get(f"{url}/v1/weather", params={"city": "Paris"}, headers=headers)
        started = time.monotonic()
        stop = started + seconds

        async def worker(url: str) -> None:
            nonlocal refused, sent
            while time.monotonic() < stop:
                response = await client.get(f"{url}/v1/weather", params={"city": "Paris"}, headers=headers)
                sent += 1
                if response.status_code == 200:
                    admitted.append(time.monotonic())
                elif response.status_code == 429:
                    refused += 1

        await asyncio.gather(*(worker(url) for url in urls for _ in range(IN_FLIGHT_PER_PROCESS)))
        return admitted, refused, sent, started, time.monotonic()


def run(workdir: pathlib.Path, *, seconds: float = 75.0) -> Result:
    workdir.mkdir(parents=True, exist_ok=True)
    with om.OpenMeteoEmulator() as emulator, fleet.redis() as redis:
        cfg = fleet.config(emulator, redis.url)
        cfg = cfg.model_copy(update={"rate_limit": proxy_config.RateLimit(default=LIMIT)})
        keys = proxy_config.KeysFile(keys=[proxy_process.key_entry("bench/bucket", fleet.KEY)])
        started = []
        try:
            for i in range(PROCESSES):
                started.append(proxy_process.ProxyProcess(workdir / f"proxy-{i}", cfg, keys).start())
            # A full bucket at the start: the warm-up requests above drain a few tokens of it.
            admitted, refused, sent, begin, end = asyncio.run(_hammer([p.url for p in started], seconds))
        finally:
            for proc in started:
                proc.stop()
    # The warm-up took PROCESSES tokens from the full bucket before the clock started.
    exact = LIMIT.capacity - PROCESSES + LIMIT.requests_per_minute * (end - begin) / 60
    return Result(end - begin, sent, len(admitted), refused, _worst_minute(admitted), exact)
