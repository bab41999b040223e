"""Token leases: a busy key takes its fleet tokens in batches; quiet keys and small limits stay exact."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.ratelimit import lease
from weather_proxy.ratelimit import limiter as limiter_mod


def test_lease_cap_keeps_small_limits_exact() -> None:
    assert lease.cap(100, 20) == 1  # the default 100/min, bucket of 20: always one request at a time
    assert lease.cap(199, 1000) == 1
    assert lease.cap(1000, 1000) == 10
    assert lease.cap(1000, 4) == 4  # never more than the bucket holds
    assert lease.cap(1_000_000, 1_000_000) == lease.MAX_SIZE


def test_lease_size_follows_the_request_rate() -> None:
    top = lease.MAX_SIZE
    assert lease.next_size(None, 0.0, top) == 1  # first lease: one token, as without leases
    fast = lease.grant(1, remaining=10, full_at=0.0, now=100.0)  # spent at once
    assert lease.next_size(fast, 100.0001, top) == top
    slow = lease.grant(4, remaining=10, full_at=0.0, now=100.0)
    slow.tokens = 0  # 4 requests in 0.5 s: 8/s, a lease of 0.05 s holds one
    assert lease.next_size(slow, 100.5, top) == 1
    medium = lease.grant(10, remaining=10, full_at=0.0, now=100.0)
    medium.tokens = 0  # 10 requests in 10 ms: 1000/s -> 50 per 0.05 s
    assert lease.next_size(medium, 100.01, top) == 50
    assert lease.next_size(medium, 100.01, lease.cap(2000, 2000)) == 20  # capped at 1% of the rate
    unused = lease.grant(8, remaining=10, full_at=0.0, now=100.0)
    unused.tokens = 8
    assert lease.next_size(unused, 100.01, top) == 1
    expired = lease.grant(8, remaining=10, full_at=0.0, now=100.0)
    assert lease.next_size(expired, 100.0 + lease.TTL_SECONDS, top) == 1


def test_lease_tokens_expire() -> None:
    held = lease.grant(3, remaining=5, full_at=0.0, now=10.0)
    assert held.tokens == 2  # the first went to the request that took the lease
    assert held.take(10.1)
    assert not held.take(10.0 + lease.TTL_SECONDS)
    assert held.take(10.2)
    assert not held.take(10.3)


@pytest.fixture
async def fleet(redis_url: str) -> object:
    """Two limiters sharing one Redis, like two replicas."""
    clients = [redis_link.make_client(redis_url, None) for _ in range(2)]
    links = [redis_link.RedisLink(c, metrics_mod.Metrics()) for c in clients]
    for link in links:
        await link.ping()
    await clients[0].flushdb()
    yield [limiter_mod.Limiter(link) for link in links], clients[0]
    for client in clients:
        await client.aclose()


async def _evals(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) + int(
        stats.get("cmdstat_eval", {}).get("calls", 0)
    )


async def test_a_busy_key_takes_leases_and_the_fleet_count_stays_exact(fleet: object) -> None:
    (one, two), client = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=100_000, burst=100_000)
    before = await _evals(client)
    decisions = [await one.hit("key:busy", limit) for _ in range(500)]
    scripts = await _evals(client) - before
    assert all(d.allowed for d in decisions)
    assert scripts < 500 / 5  # far fewer round trips than requests
    assert decisions[0].remaining == 99_999
    # Every served request took its token from the fleet's bucket: another replica sees them
    # all gone, plus at most the unspent tokens of this process's lease (the refill of a few
    # milliseconds may add a couple back).
    peeked = await two.peek("key:busy", limit)
    held = one.unspent("key:busy", limit)
    assert 100_000 - 500 - held <= peeked.remaining <= 100_000 - 500 + 5
    assert (await one.peek("key:busy", limit)).remaining >= peeked.remaining + held - 5


async def test_small_limits_are_counted_one_request_at_a_time(fleet: object) -> None:
    (one, two), _client = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=5, burst=6)
    decisions = [await (one if i % 2 else two).hit("key:small", limit) for i in range(8)]
    assert [d.allowed for d in decisions] == [True] * 6 + [False] * 2
    assert [d.remaining for d in decisions[:6]] == [5, 4, 3, 2, 1, 0]
    assert one.unspent("key:small", limit) == two.unspent("key:small", limit) == 0
    assert decisions[-1].reset_seconds >= 1
    assert decisions[-1].retry_after >= 1


async def test_concurrent_requests_share_one_renewal(fleet: object) -> None:
    (one, _two), client = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=100_000, burst=100_000)
    started = time.time()
    await one.hit("key:burst", limit)
    await one.hit("key:burst", limit)  # now sized for a fast key
    before = await _evals(client)
    decisions = await asyncio.gather(*(one.hit("key:burst", limit) for _ in range(200)))
    scripts = await _evals(client) - before
    assert all(d.allowed for d in decisions)
    assert scripts <= 200 / 10  # not one lease per waiting request
    # Every request took its own token: what is left is 202 fewer, plus the refill since.
    left = (await one.peek("key:burst", limit)).remaining
    refill = (time.time() - started) * limit.requests_per_minute / 60
    assert 100_000 - 202 <= left <= 100_000 - 202 + refill + 1


async def test_near_the_limit_a_lease_shrinks_to_what_fits(fleet: object) -> None:
    (one, two), _client = fleet  # type: ignore[misc]
    limit = config_mod.Limit(requests_per_minute=1000, burst=1000)  # leases up to 10
    served = 0
    for _ in range(1100):
        if (await one.hit("key:edge", limit)).allowed:
            served += 1
    # A few ms of refill (1000/min) may add a token or two to the bucket's 1000.
    assert 1000 <= served + one.unspent("key:edge", limit) <= 1002
    assert served >= 1000 - lease.cap(1000, 1000)
    refused = await two.hit("key:edge", limit)
    assert not refused.allowed
    assert refused.remaining == 0


async def test_without_redis_limits_are_local_and_exact() -> None:
    link = redis_link.RedisLink(None, metrics_mod.Metrics())
    lim = limiter_mod.Limiter(link)
    limit = config_mod.Limit(requests_per_minute=100_000, burst=100_000)
    decisions = [await lim.hit("key:local", limit) for _ in range(50)]
    assert [d.remaining for d in decisions] == list(range(99_999, 99_949, -1))
    assert lim.unspent("key:local", limit) == 0
