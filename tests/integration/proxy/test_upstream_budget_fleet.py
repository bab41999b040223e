"""The upstream budget across a fleet: three proxy processes sharing one Redis spend one budget.

Each process alone would let ``perMinute`` calls through; together they make at most that many,
counted at the emulator, and every process refuses the rest with 503 upstream-budget-exhausted.
"""

from __future__ import annotations

import httpx
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from tests.integration.proxy import scenario
from tests.unit.proxy.test_upstream_budget import Clock, _budget
from weather_proxy import config as config_mod
from weather_proxy import config as proxy_config
from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import budget

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PER_MINUTE = 12  # six cities' misses: a geocoding and a forecast call each
BUDGET_EXHAUSTED = "https://weatherproxy.dev/problems/upstream-budget-exhausted"


def test_processes_sharing_redis_share_one_budget(
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
    openmeteo: om.OpenMeteoEmulator,
) -> None:
    config = make_config()
    budget = proxy_config.Budget(per_minute=PER_MINUTE, per_hour=None, per_day=None)
    config = config.model_copy(update={"upstream": config.upstream.model_copy(update={"budget": budget})})
    fleet = [proxy_factory(config, scenario.standard_keys()) for _ in range(3)]
    # Live is not linked: a process whose first ping to Redis failed (a loaded machine) counts on
    # its own until its link is back, which is the budget's documented fallback, not what this tests.
    assert scenario.wait_until(lambda: all(scenario.redis_up(p.url) == 1.0 for p in fleet), timeout=30)
    cities = ["Paris", "London", "Berlin", "Madrid", "Rome", "Vienna", "Oslo", "Lisbon", "Prague", "Dublin"]
    answers = [scenario.weather(fleet[i % 3].url, city=city) for i, city in enumerate(cities * 2)]
    assert openmeteo.calls("search") + openmeteo.calls("forecast") <= PER_MINUTE
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {200, 503}
    refused = [a for a in answers if a.status_code == 503]
    assert all(a.json()["type"] == BUDGET_EXHAUSTED for a in refused)
    assert all(1 <= int(a.headers["retry-after"]) <= 60 for a in refused)
    # Every process refused some: the count is the fleet's, not each process's own.
    refused_by = {fleet[i % 3].port for i, a in enumerate(answers) if a.status_code == 503}
    assert len(refused_by) == 3
    used = [
        scenario.metric_value(
            httpx.get(f"{p.url}/metrics").text,
            "weather_proxy_upstream_budget_used_ratio",
            {"window": "minute"},
        )
        for p in fleet
    ]
    assert max(u or 0 for u in used) == 1.0


async def test_windows_count_fleet_wide_in_redis_and_roll_over_with_the_clock(redis_url: str) -> None:
    metrics = metrics_mod.Metrics()
    link = redis_link.RedisLink(redis_link.make_client(redis_url, None), metrics)
    cfg = config_mod.Budget(per_minute=3, per_hour=5, per_day=None)
    clock = Clock(1_800_000_000.0)  # a minute's start (divisible by 60)
    one, _ = _budget(link, cfg, clock)
    other, _ = _budget(link, cfg, clock)  # another replica, same Redis
    try:
        await one.spend("forecast")
        await other.spend("forecast")
        await one.spend("geocoding")
        with pytest.raises(budget.BudgetExhausted) as refused:
            await other.spend("forecast")
        assert refused.value.window == "minute"
        assert refused.value.retry_after == 60
        clock.now += 60  # the next minute: its window is empty, the hour's holds 3
        await other.spend("forecast")
        await other.spend("forecast")
        with pytest.raises(budget.BudgetExhausted) as hourly:
            await one.spend("forecast")
        assert hourly.value.window == "hour"
        assert one.used("hour") == 3  # as this replica last saw it
        await one.refresh()  # the fleet's counts, read from Redis
        assert one.used("hour") == 5
        assert one.as_json()["minute"] == {"used": 2, "limit": 3}
    finally:
        await link.aclose()


async def test_background_calls_stop_at_their_share_and_leave_the_rest_to_users(redis_url: str) -> None:
    metrics = metrics_mod.Metrics()
    link = redis_link.RedisLink(redis_link.make_client(redis_url, None), metrics)
    cfg = config_mod.Budget(per_minute=10, per_hour=None, per_day=None, background_percent=80)
    spender, _ = _budget(link, cfg, Clock(1_800_000_000.0))
    try:
        with budget.background():
            for _ in range(8):
                await spender.spend("forecast")
            with pytest.raises(budget.BudgetExhausted) as refused:
                await spender.spend("forecast")
        assert refused.value.by_background
        await spender.spend("forecast")  # a user's miss: still room
        await spender.spend("forecast")
        with pytest.raises(budget.BudgetExhausted) as full:
            await spender.spend("forecast")
        assert not full.value.by_background
    finally:
        await link.aclose()
    text = metrics.render().decode()
    assert 'weather_proxy_upstream_budget_exhausted_total{origin="background",window="minute"} 1.0' in text
