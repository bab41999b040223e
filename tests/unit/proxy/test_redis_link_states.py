"""The Redis link's states (busy is not down, a refused connection is down) and the fleet wait's
schedule, with no server: the Redis tests are tests/integration/proxy/test_fleet_coalescing.py.
"""

from __future__ import annotations

import itertools

import pytest
import redis.exceptions

from weather_proxy import redis_link
from weather_proxy.cache import coalesce
from weather_proxy.observability import metrics as metrics_mod


def test_busy_errors_are_told_from_down_ones() -> None:
    assert redis_link.is_busy(redis.exceptions.TimeoutError("Timeout connecting to server"))
    assert redis_link.is_busy(redis.exceptions.ConnectionError(redis_link.NO_CONNECTION_AVAILABLE))
    assert redis_link.is_busy(TimeoutError())
    assert not redis_link.is_busy(
        redis.exceptions.ConnectionError("Error 111 connecting. Connection refused.")
    )
    assert not redis_link.is_busy(ConnectionResetError())


async def test_a_refused_connection_is_down() -> None:
    metrics = metrics_mod.Metrics()
    now = [100.0]
    link = redis_link.RedisLink(
        redis_link.make_client("redis://127.0.0.1:1/0", None), metrics, clock=lambda: now[0]
    )
    link.up = True
    lock = coalesce.FleetLock(link, metrics)
    try:
        assert await lock.acquire("k", 1) == ""
        assert not link.up
        assert not link.usable  # out of the hot path until the retry delay passed
        now[0] += redis_link.RETRY_AFTER_FAILURE_SECONDS - 0.001
        assert not link.usable
        now[0] += 0.001
        assert link.usable  # worth one more try, still down until it answers
        assert not link.up
        assert link.busy_errors == 0
        assert await link.warm_up() == 0
    finally:
        await link.aclose()


@pytest.mark.looptime
async def test_fleet_wait_polls_with_a_growing_interval(looptime: float) -> None:
    # The wait's clock is the event loop's, which looptime moves: the schedule is exact, and instant.
    metrics = metrics_mod.Metrics()
    lock = coalesce.FleetLock(redis_link.RedisLink(None, metrics), metrics)  # the reads are the test's
    read_at: list[float] = []

    async def never() -> int | None:
        read_at.append(float(looptime))
        return None

    got = await lock.wait_for(never, lambda v: True, wait_seconds=0.3, interval=0.01, max_interval=0.08)
    assert got is None
    # 10 ms growing by half up to 80 ms (at a fixed 10 ms it would be 31 reads), the last one at the deadline.
    gaps = [b - a for a, b in itertools.pairwise(read_at)]
    expected = [0.01, 0.015, 0.0225, 0.03375, 0.050625, 0.0759375, 0.08, 0.0121875]
    assert gaps == pytest.approx(expected, abs=2e-6)  # looptime counts in microseconds
    assert read_at[-1] == pytest.approx(read_at[0] + 0.3)
    assert metrics.coalesced.labels("fleet")._value.get() == 1
