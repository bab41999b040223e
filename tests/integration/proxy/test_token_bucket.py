"""Token buckets (GCRA) and quotas, in Redis and in memory, against a reference token bucket.

The clock is moved, never slept: the limiter takes it as a parameter, and the Redis
script takes ``now`` from the caller, so the same arrival sequence gives the same
decisions everywhere.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from testbed import token_bucket
from tests.unit.proxy.test_token_bucket_arithmetic import LIMITS, START, Clock, _arrivals, _limiter
from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.ratelimit import bucket as bucket_mod
from weather_proxy.ratelimit import lease
from weather_proxy.ratelimit import limiter as limiter_mod

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = redis_link.make_client(redis_url, None)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.mark.parametrize(("per_minute", "burst"), LIMITS[:4])
async def test_the_redis_script_and_the_memory_buckets_decide_alike(
    client: aioredis.Redis, per_minute: int, burst: int
) -> None:
    limit = config_mod.Limit(requests_per_minute=per_minute, burst=burst)
    clock = Clock()
    fleet, local = _limiter(client, clock), _limiter(None, clock)
    reference = token_bucket.ReferenceBucket(per_minute, max(1, burst), bucket_mod.MICROS)
    gap = bucket_mod.Bucket.of(limit).interval // 2
    for now in _arrivals(7, 400, gap):
        clock.now = now / bucket_mod.MICROS
        in_redis = await fleet.hit("key:same", limit)
        in_memory = await local.hit("key:same", limit)
        assert in_redis == in_memory
        assert in_redis.allowed == reference.admit(now)


async def test_rate_is_sustained_and_burst_is_the_bucket(client: aioredis.Redis) -> None:
    """``{requestsPerMinute: 5, burst: 5}``: 5 at once, then one every 12 s (not 10 a minute)."""
    clock = Clock()
    lim = _limiter(client, clock)
    limit = config_mod.Limit(requests_per_minute=5, burst=5)
    first = [await lim.hit("key:five", limit) for _ in range(6)]
    assert [d.allowed for d in first] == [True] * 5 + [False]
    assert [d.remaining for d in first[:5]] == [4, 3, 2, 1, 0]
    assert first[0].limit == 5
    assert first[0].reset_seconds == 12  # one token short of full
    assert first[4].reset_seconds == 60
    refused = first[5]
    assert refused.retry_after == 12
    assert refused.headers()["Retry-After"] == "12"
    assert refused.problem().slug == "rate-limited"
    clock.now += 11.9
    assert not (await lim.hit("key:five", limit)).allowed
    clock.now += 0.1
    assert (await lim.hit("key:five", limit)).allowed
    assert not (await lim.hit("key:five", limit)).allowed


async def test_an_idle_key_refills_to_its_capacity_and_no_further(client: aioredis.Redis) -> None:
    clock = Clock()
    lim = _limiter(client, clock)
    limit = config_mod.Limit(requests_per_minute=60, burst=10)
    assert all([(await lim.hit("key:idle", limit)).allowed for _ in range(10)])
    clock.now += 3600  # an hour of quiet still fills only the bucket
    burst = [(await lim.hit("key:idle", limit)).allowed for _ in range(11)]
    assert burst == [True] * 10 + [False]
    assert (await lim.peek("key:idle", limit)).remaining == 0


async def test_zero_burst_is_a_bucket_of_one(client: aioredis.Redis) -> None:
    clock = Clock()
    lim = _limiter(client, clock)
    limit = config_mod.Limit(requests_per_minute=60, burst=0)
    assert [(await lim.hit("key:one", limit)).allowed for _ in range(2)] == [True, False]
    clock.now += 1
    assert (await lim.hit("key:one", limit)).allowed


@pytest.mark.parametrize("leasing", [False, True])
async def test_three_replicas_never_admit_more_than_rate_plus_burst_in_any_minute(
    client: aioredis.Redis, leasing: bool
) -> None:
    """Three limiters on one Redis, hammered in turn for three simulated minutes."""
    clock = Clock()
    replicas = [_limiter(client, clock, leasing=leasing) for _ in range(3)]
    limit = config_mod.Limit(requests_per_minute=6000, burst=300)  # leases up to 60 tokens
    admitted: list[float] = []
    step = 0.004  # 250 requests/s offered, 2.5 times the sustained rate
    for i in range(45_000):
        clock.now = START + i * step
        if (await replicas[i % 3].hit("key:fleet", limit)).allowed:
            admitted.append(clock.now)
    over = lease.TTL_SECONDS * limit.requests_per_minute / 60 if leasing else 0
    assert token_bucket.most_in_any_minute(admitted) <= limit.requests_per_minute + limit.burst + over
    # ...and nothing is lost beyond the leases' documented under-admission.
    expected = limit.burst + limit.requests_per_minute * 3
    assert len(admitted) >= expected - (3 * lease.cap(6000, 300) if leasing else 0) - 1


async def test_a_quota_counts_a_utc_day_fleet_wide_and_resets_at_midnight(client: aioredis.Redis) -> None:
    clock = Clock(datetime.datetime(2026, 12, 1, 23, 59, 0, tzinfo=datetime.UTC).timestamp())
    one, two = _limiter(client, clock), _limiter(client, clock)
    limit = config_mod.Limit(requests_per_minute=600, burst=100)
    quota = config_mod.Quota(requests=3, period=config_mod.QuotaPeriod.DAY)
    decisions = [await (one if i % 2 else two).hit("key:q", limit, quota) for i in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].quota == limiter_mod.QuotaState(3, 3, clock.now + 60)
    refused = decisions[3]
    assert refused.quota_exceeded
    assert refused.retry_after == 60  # to midnight UTC
    assert refused.problem().slug == "quota-exceeded"
    assert refused.remaining == 97  # the refusal took no token
    clock.now += 60
    fresh = await one.hit("key:q", limit, quota)
    assert fresh.allowed
    assert fresh.quota is not None
    assert fresh.quota.used == 1
    ttl = await client.pttl("weather-proxy:quota:{key:q}:2026-12-02")
    assert 86_400_000 < ttl <= (86_400 + bucket_mod.QUOTA_GRACE_SECONDS) * 1000


async def test_a_rate_refusal_does_not_count_against_the_quota(client: aioredis.Redis) -> None:
    clock = Clock()
    lim = _limiter(client, clock)
    limit = config_mod.Limit(requests_per_minute=1, burst=1)
    quota = config_mod.Quota(requests=10, period=config_mod.QuotaPeriod.MONTH)
    assert (await lim.hit("key:r", limit, quota)).allowed
    refused = await lim.hit("key:r", limit, quota)
    assert not refused.allowed
    assert not refused.quota_exceeded
    assert refused.quota is not None
    assert refused.quota.used == 1
