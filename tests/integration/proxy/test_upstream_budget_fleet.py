"""The upstream budget across a fleet: three proxy processes sharing one Redis spend one budget.

Each process alone would let ``perMinute`` calls through; together they make at most that many,
counted at the emulator, and every process refuses the rest with 503 upstream-budget-exhausted.
"""

from __future__ import annotations

import httpx
import pytest

from devcluster import openmeteo as om
from tests.integration.proxy import scenario
from tests.support import proxy_process
from weather_proxy import config as proxy_config

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
