"""Token leases without Redis: their size, their expiry, and exact local limits when Redis is absent."""

from __future__ import annotations

import pytest

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


def test_lease_size_follows_the_request_rate_over_a_window() -> None:
    top = lease.MAX_SIZE
    pace = lease.Pace(since=100.0)
    assert lease.next_size(pace, top) == 1  # no complete window yet: one token, as without leases
    for i in range(1000):  # 1000 requests/s for a second
        pace.tick(100.0 + i / 1000)
    assert lease.next_size(pace, top) == 1  # the window closes at its first tick past one second
    pace.tick(101.0)
    assert pace.rate == pytest.approx(1001 / 1.0)
    assert lease.next_size(pace, top) == 51  # 0.05 s of requests
    assert lease.next_size(pace, lease.cap(2000, 2000)) == 20  # capped at 1% of the rate
    assert lease.next_size(pace, 1) == 1
    for i in range(8):  # a burst after a quiet spell does not look fast: 8 requests over 4 s
        pace.tick(105.0 + i * 0.001)
    assert pace.rate == pytest.approx(1 / 4.0)
    assert lease.next_size(pace, top) == 1


def test_lease_tokens_expire() -> None:
    held = lease.grant(3, remaining=5, full_at=0.0, quota=None, now=10.0)
    assert held.tokens == 2  # the first went to the request that took the lease
    assert held.take(10.1)
    assert not held.take(10.0 + lease.TTL_SECONDS)
    assert held.take(10.2)
    assert not held.take(10.3)


class Clock:
    """A clock the test moves: the pace, the leases' TTL and the bucket all read it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_without_redis_limits_are_local_and_exact() -> None:
    link = redis_link.RedisLink(None, metrics_mod.Metrics())
    lim = limiter_mod.Limiter(link, clock=Clock())
    limit = config_mod.Limit(requests_per_minute=100_000, burst=100_000)
    decisions = [await lim.hit("key:local", limit) for _ in range(50)]
    assert [d.remaining for d in decisions] == list(range(99_999, 99_949, -1))
    assert lim.unspent("key:local", limit) == 0
