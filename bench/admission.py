"""Figure 4: how exactly three processes sharing one Redis hold a key's token bucket.

One key with ``{requestsPerMinute: R, burst: B}`` is hammered through three real
proxy processes (round-robin, several requests in flight per process, cached
city) for a bit more than a minute, offering more than the rate, so the bucket is
near empty most of the time and every process takes leases. From the client's log
of every request (its arrival taken as the middle of its round trip) it prints:

* the most 200s in any 60 s window against the contract's bound ``R + B``
  (over-admission; the leases' documented bound is ``R x TTL / 60`` = 1% of R);
* the 200s of the whole run against what an exact token bucket, full at the
  start, admits of the same arrivals (a loaded machine offering less than the
  rate at moments does not count against the limiter), and the lease tokens the
  processes counted as expired unserved (under-admission).
"""

from __future__ import annotations

import asyncio
import dataclasses
import pathlib
import time

import httpx

from bench import fleet
from devcluster import openmeteo as om
from testbed import proxy_process, token_bucket
from weather_proxy import config as proxy_config
from weather_proxy.ratelimit import lease

PROCESSES = 3
IN_FLIGHT_PER_PROCESS = 8
LIMIT = proxy_config.Limit(requests_per_minute=6000, burst=100)
UNSPENT = "weather_proxy_ratelimit_lease_unspent_tokens_total"


@dataclasses.dataclass
class Result:
    seconds: float
    sent: int
    admitted: int
    refused: int
    worst_minute: int
    exact: int  # what an exact token bucket admits of the same arrivals
    unspent: int  # lease tokens that expired unserved, from the processes' metrics

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
            f"4. admitted over the run: {self.admitted} vs {self.exact} by an exact token bucket on the "
            f"same arrivals: {self.admitted - self.exact:+d} ({(self.admitted - self.exact) / rate:+.2%} "
            f"of the rate); lease tokens expired unserved: {self.unspent}",
        ]


def _reference(arrivals: list[float]) -> int:
    """What an exact token bucket (full at the start) admits of these arrival times."""
    reference = token_bucket.ReferenceBucket(LIMIT.requests_per_minute, LIMIT.capacity)
    return sum(1 for moment in arrivals if reference.admit(moment))


async def _hammer(urls: list[str], seconds: float) -> tuple[list[tuple[float, int]], float, float]:
    """(arrival time, status) of every request; arrival = the middle of its round trip."""
    seen: list[tuple[float, int]] = []
    headers = {"X-API-Key": fleet.KEY}
    limits = httpx.Limits(max_connections=IN_FLIGHT_PER_PROCESS * PROCESSES)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def one(url: str) -> None:
            sent = time.monotonic()
            response = await client.get(f"{url}/v1/weather", params={"city": "Paris"}, headers=headers)
            seen.append(((sent + time.monotonic()) / 2, response.status_code))

        for url in urls:  # cache the city first (through the bucket too)
            await one(url)
        started = time.monotonic()
        stop = started + seconds

        async def worker(url: str) -> None:
            while time.monotonic() < stop:
                await one(url)

        await asyncio.gather(*(worker(url) for url in urls for _ in range(IN_FLIGHT_PER_PROCESS)))
        return seen, started, time.monotonic()


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
            seen, begin, end = asyncio.run(_hammer([p.url for p in started], seconds))
            unspent = sum(_counter(p.url, UNSPENT) for p in started)
        finally:
            for proc in started:
                proc.stop()
    seen.sort()
    admitted = [moment for moment, status in seen if status == 200]
    refused = sum(1 for _, status in seen if status == 429)
    exact = _reference([moment for moment, _ in seen])
    return Result(
        end - begin,
        len(seen),
        len(admitted),
        refused,
        token_bucket.most_in_any_minute(admitted),
        exact,
        unspent,
    )


def _counter(url: str, name: str) -> int:
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return 0
