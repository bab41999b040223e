"""Token leases: a busy key takes its fleet tokens in batches; quiet keys and small limits stay exact."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from tests.unit.proxy.test_lease_sizing import Clock
from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.ratelimit import lease
from weather_proxy.ratelimit import limiter as limiter_mod

pytestmark = pytest.mark.integration


async def _warm(lim: limiter_mod.Limiter, clock: Clock, bucket: str, limit: config_mod.Limit) -> None:
    """A second of 2,000 requests/s in this process: the pace a lease is sized from."""
    for _ in range(2001):
        await lim.hit(bucket, limit)
        clock.now += 0.0005


@pytest.fixture
async def fleet(redis_url: str) -> object:
    """Two limiters sharing one Redis, like two replicas, on one movable clock."""
    clients = [redis_link.make_client(redis_url, None) for _ in range(2)]
    links = [redis_link.RedisLink(c, metrics_mod.Metrics()) for c in clients]
    for link in links:
        await link.ping()
    await clients[0].flushdb()
    clock = Clock()
    yield [limiter_mod.Limiter(link, clock=clock) for link in links], clients[0], clock
    for client in clients:
        await client.aclose()


async def _evals(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) + int(
        stats.get("cmdstat_eval", {}).get("calls", 0)
    )


async def test_a_busy_key_takes_leases_and_the_fleet_count_stays_exact(fleet: object) -> None:
    (one, two), client, clock = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=100_000, burst=100_000)
    before = await _evals(client)
    decisions = [await one.hit("key:busy", limit) for _ in range(2500)]  # the clock stands still
    scripts = await _evals(client) - before
    assert all(d.allowed for d in decisions)
    assert decisions[0].remaining == 99_999
    assert 2500 <= scripts <= 2501  # no pace yet (the clock stands still): a call per request (+ the load)
    await _warm(one, clock, "key:busy2", limit)
    before = await _evals(client)
    decisions = [await one.hit("key:busy2", limit) for _ in range(640)]
    scripts = await _evals(client) - before
    assert all(d.allowed for d in decisions)
    assert scripts <= 11  # leases of 100 (0.05 s at 2,000/s; the cap is 1% of the rate, 1,000)
    # Every served request took its token from the fleet's bucket: another replica sees them
    # all gone, and this process holds at most one lease's unspent tokens.
    peeked = await two.peek("key:busy2", limit)
    held = one.unspent("key:busy2", limit)
    used = 2001 + 640
    refill = int(1.0005 * limit.requests_per_minute / 60)  # over the warm-up second
    assert peeked.remaining == 100_000 - used - held + refill
    assert (await one.peek("key:busy2", limit)).remaining == peeked.remaining + held


async def test_small_limits_are_counted_one_request_at_a_time(fleet: object) -> None:
    (one, two), _client, _clock = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=5, burst=6)
    decisions = [await (one if i % 2 else two).hit("key:small", limit) for i in range(8)]
    assert [d.allowed for d in decisions] == [True] * 6 + [False] * 2
    assert [d.remaining for d in decisions[:6]] == [5, 4, 3, 2, 1, 0]
    assert one.unspent("key:small", limit) == two.unspent("key:small", limit) == 0
    assert decisions[-1].reset_seconds >= 1
    assert decisions[-1].retry_after >= 1


async def test_concurrent_requests_share_one_renewal(fleet: object) -> None:
    (one, _two), client, clock = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=100_000, burst=100_000)
    await _warm(one, clock, "key:burst", limit)
    before_left = (await one.peek("key:burst", limit)).remaining
    before = await _evals(client)
    decisions = await asyncio.gather(*(one.hit("key:burst", limit) for _ in range(200)))
    scripts = await _evals(client) - before
    assert all(d.allowed for d in decisions)
    assert scripts <= 200 / 10  # not one lease per waiting request
    # Every request took its own token (the clock stood still: no refill).
    assert (await one.peek("key:burst", limit)).remaining == before_left - 200


async def test_a_burst_on_a_key_without_a_pace_takes_tokens_for_its_queue(fleet: object) -> None:
    """A key busy after a quiet spell has no pace: the renewal takes one token per waiting request."""
    (one, two), client, _clock = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=100_000, burst=100_000)
    before = await _evals(client)
    decisions = await asyncio.gather(*(one.hit("key:cold", limit) for _ in range(50)))
    scripts = await _evals(client) - before
    assert all(d.allowed for d in decisions)
    assert scripts == 2  # the first request's own token, then one lease for the 49 queued behind it
    assert one.unspent("key:cold", limit) == 0  # no token taken for a request that is not there
    assert (await two.peek("key:cold", limit)).remaining == 100_000 - 50


async def test_near_the_limit_a_lease_shrinks_to_what_fits(fleet: object) -> None:
    (one, two), _client, clock = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=100_000, burst=3000)  # leases up to 1,000 (1% of the rate)
    await _warm(one, clock, "key:edge", limit)  # 2,001 of the bucket's 3,000, ~1,667 refilled
    served = 0
    left = (await two.peek("key:edge", limit)).remaining
    for _ in range(left + 100):
        if (await one.hit("key:edge", limit)).allowed:
            served += 1
    assert served + one.unspent("key:edge", limit) == left
    assert served >= left - lease.cap(100_000, 3000)
    refused = await two.hit("key:edge", limit)
    assert not refused.allowed
    assert refused.remaining == 0
