"""Token buckets (GCRA) and quotas in memory, against a reference token bucket: no server.

The clock is moved, never slept: the limiter takes it as a parameter. The same arrivals and
limiter serve the Redis tests (tests/integration/proxy/test_token_bucket.py).
"""

from __future__ import annotations

import datetime
import random

import pytest
import redis.asyncio as aioredis

from testbed import token_bucket
from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.ratelimit import bucket as bucket_mod
from weather_proxy.ratelimit import limiter as limiter_mod

START = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC).timestamp()


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# Rates whose token interval is a whole number of microseconds, so GCRA and the reference agree exactly.
LIMITS = [(1, 1), (5, 5), (60, 10), (600, 1), (6000, 50), (100, 20)]


def _arrivals(seed: int, count: int, mean_gap_us: int) -> list[int]:
    rng = random.Random(seed)  # nosec B311 - test data
    now = int(START * bucket_mod.MICROS)
    out = []
    for _ in range(count):
        now += int(rng.expovariate(1 / mean_gap_us))
        out.append(now)
    return out


@pytest.mark.parametrize(("per_minute", "burst"), LIMITS)
def test_gcra_admits_exactly_what_a_token_bucket_admits(per_minute: int, burst: int) -> None:
    bucket = bucket_mod.Bucket.of(config_mod.Limit(requests_per_minute=per_minute, burst=burst))
    reference = token_bucket.ReferenceBucket(per_minute, max(1, burst), bucket_mod.MICROS)
    tat = 0
    # Arrivals around the sustained rate: bursts, refusals and refills all happen.
    for now in _arrivals(per_minute, 3000, bucket.interval // 2):
        granted, tat = bucket.take(tat, now, 1)
        assert bool(granted) == reference.admit(now), now


def test_month_periods_follow_the_utc_calendar() -> None:
    december = datetime.datetime(2026, 12, 31, 23, 0, tzinfo=datetime.UTC).timestamp()
    period = bucket_mod.period_of(config_mod.QuotaPeriod.MONTH, december)
    assert period.label == "2026-12"
    assert period.end == datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC).timestamp()
    february = datetime.datetime(2028, 2, 29, 12, 0, tzinfo=datetime.UTC).timestamp()
    leap = bucket_mod.period_of(config_mod.QuotaPeriod.MONTH, february)
    assert leap.start == datetime.datetime(2028, 2, 1, tzinfo=datetime.UTC).timestamp()
    assert leap.end == datetime.datetime(2028, 3, 1, tzinfo=datetime.UTC).timestamp()
    day = bucket_mod.period_of(config_mod.QuotaPeriod.DAY, february)
    assert (day.label, day.end - day.start) == ("2028-02-29", 86_400)


async def test_while_redis_is_down_each_process_keeps_its_own_quota() -> None:
    clock = Clock(datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC).timestamp())
    lim = _limiter(None, clock)
    limit = config_mod.Limit(requests_per_minute=600, burst=100)
    quota = config_mod.Quota(requests=2, period=config_mod.QuotaPeriod.MONTH)
    assert [(await lim.hit("key:m", limit, quota)).allowed for _ in range(3)] == [True, True, False]
    clock.now = datetime.datetime(2026, 12, 1, 0, 0, 1, tzinfo=datetime.UTC).timestamp()
    assert (await lim.hit("key:m", limit, quota)).allowed


def test_local_buckets_forget_full_buckets_when_they_grow() -> None:
    local = limiter_mod.LocalBuckets()
    bucket = bucket_mod.Bucket.of(config_mod.Limit(requests_per_minute=60, burst=1))
    now = int(START * bucket_mod.MICROS)
    for i in range(limiter_mod.LOCAL_SWEEP_AT):
        local.take(f"anon:{i}", bucket, now, 1, 0, None)
    later = now + 2 * bucket.span
    local.take("anon:new", bucket, later, 1, 0, None)
    assert list(local.tats) == ["anon:new"]


def _limiter(client: aioredis.Redis | None, clock: Clock, *, leasing: bool = False) -> limiter_mod.Limiter:
    link = redis_link.RedisLink(client, metrics_mod.Metrics())
    link.up = client is not None
    return limiter_mod.Limiter(link, leasing=leasing, clock=clock)
