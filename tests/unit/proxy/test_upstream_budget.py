"""The upstream budget: windows counted before each call, stale when spent, background calls yield.

Real redis-server and the Open-Meteo emulator; the clock of ``UpstreamBudget`` is moved by the
test where windows must roll over.
"""

from __future__ import annotations

import pytest

from devcluster import openmeteo as om
from devcluster.processes import free_port
from tests.unit.proxy.conftest import AppFactory, age_entry, build_config, refreshes_done, running
from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import budget

BUDGET_EXHAUSTED = "https://weatherproxy.dev/problems/upstream-budget-exhausted"
PARIS = "48.85,2.35"  # the weather key of the emulator's Paris


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _budget(
    link: redis_link.RedisLink, cfg: config_mod.Budget, clock: Clock
) -> tuple[budget.UpstreamBudget, metrics_mod.Metrics]:
    metrics = link.metrics
    return budget.UpstreamBudget(lambda: cfg, link, metrics, clock=clock), metrics


async def test_a_spent_window_answers_503_with_retry_after_and_makes_no_call(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator
) -> None:
    # A city's miss costs two calls (geocoding, forecast): four calls are two cities.
    async with proxy(upstream={"budget": {"perMinute": 4}}) as (_app, client):
        first = [await client.get("/v1/weather", params={"city": c}) for c in ("Paris", "London")]
        spent = await client.get("/v1/weather", params={"city": "Berlin"})
        cached = await client.get("/v1/weather", params={"city": "Paris"})
        metrics = (await client.get("/metrics")).text
        ready = (await client.get("/health/ready")).json()
    assert [r.status_code for r in first] == [200, 200]
    assert spent.status_code == 503
    assert spent.json()["type"] == BUDGET_EXHAUSTED
    assert 1 <= int(spent.headers["retry-after"]) <= 60
    assert cached.status_code == 200  # a hit needs no budget
    assert openmeteo.calls("search") + openmeteo.calls("forecast") == 4
    assert 'weather_proxy_upstream_budget_used_ratio{window="minute"} 1.0' in metrics
    assert 'weather_proxy_upstream_budget_exhausted_total{origin="request",window="minute"} 1.0' in metrics
    assert ready["checks"]["upstream"]["budget"]["minute"] == {"used": 4, "limit": 4}
    assert ready["checks"]["upstream"]["breaker"] == "closed"  # a spent budget is no upstream failure


async def test_spent_budget_serves_stale_data_when_cached(openmeteo: om.OpenMeteoEmulator) -> None:
    cfg = build_config(
        openmeteo,
        cache={"ttlSeconds": 1, "staleTtlSeconds": 600, "memory": {"ttlSeconds": 600}},
        # Every window spent: the windows are fixed UTC minutes, hours and days, so a run across a
        # minute's end would otherwise get a fresh minute for the refresh.
        upstream={"budget": {"perMinute": 2, "perHour": 2, "perDay": 2}},
    )
    async with running(cfg) as (app, client):
        fresh = await client.get("/v1/weather", params={"city": "Paris"})
        age_entry(app, PARIS, 1.2)  # past its 1 s of freshness, well within the stale window
        stale = await client.get("/v1/weather", params={"city": "Paris"})
        await refreshes_done(app)  # the stale answer's background refresh has been tried
        again = await client.get("/v1/weather", params={"city": "Paris"})
        metrics = (await client.get("/metrics")).text
    assert fresh.headers["x-cache"] == "MISS"
    assert stale.status_code == 200
    assert stale.headers["x-cache"] == "STALE"
    assert again.headers["x-cache"] == "STALE"
    assert openmeteo.calls("forecast") == 1
    # The refresh was made, and refused by the budget (not still pending when ``again`` was served).
    assert 'weather_proxy_upstream_budget_exhausted_total{origin="background",window="minute"} 1.0' in metrics
    assert 'weather_proxy_background_refreshes_total{result="failure"} 1.0' in metrics


async def test_a_null_window_has_no_limit(proxy: AppFactory, openmeteo: om.OpenMeteoEmulator) -> None:
    async with proxy(upstream={"budget": {"perMinute": None, "perHour": None, "perDay": 3}}) as (_, client):
        ok = await client.get("/v1/weather", params={"city": "Paris"})
        spent = await client.get(
            "/v1/weather", params={"city": "London"}
        )  # geocoding is the 3rd, forecast the 4th
    assert ok.status_code == 200
    assert spent.status_code == 503
    assert "per day" in spent.json()["detail"]


async def test_while_redis_is_down_each_process_counts_alone() -> None:
    metrics = metrics_mod.Metrics()
    link = redis_link.RedisLink(redis_link.make_client(f"redis://127.0.0.1:{free_port()}/0", None), metrics)
    spender, _ = _budget(
        link, config_mod.Budget(per_minute=2, per_hour=None, per_day=None), Clock(1_800_000_000.0)
    )
    try:
        await spender.spend("geocoding")
        await spender.spend("forecast")
        with pytest.raises(budget.BudgetExhausted):
            await spender.spend("forecast")
    finally:
        await link.aclose()
    assert not link.up


async def test_warming_is_a_background_caller(openmeteo: om.OpenMeteoEmulator) -> None:
    # Two calls a minute, background share 50%: warming gets one call (the geocoding), users the other.
    cfg = build_config(
        openmeteo,
        upstream={"budget": {"perMinute": 2, "perHour": None, "perDay": None, "backgroundPercent": 50}},
    )
    async with running(cfg) as (app, client):
        rt = app.state.runtime
        rt.parts.budget.clock = Clock(1_800_000_000.0)  # one UTC minute throughout, whenever the test runs
        # Paris is warmed by the pass the test runs (no warmer task at start: no warm cities then).
        cache = rt.config.cache.model_copy(update={"warm_cities": ["Paris"]})
        rt.config = rt.config.model_copy(update={"cache": cache})
        assert await rt.parts.warmer.warm_once() == 0
        user = await client.get("/v1/weather", params={"city": "Paris"})
    assert rt.parts.warmer.last_run_failures == 1
    assert openmeteo.calls("search") == 1  # warming's one call
    assert user.status_code == 200  # the user's miss took the forecast call
    assert openmeteo.calls("forecast") == 1


def test_the_default_budget_is_left_out_of_the_file_and_reads_back_the_same() -> None:
    default = config_mod.ProxyConfig()
    assert "budget" not in default.to_camel_dict()["upstream"]
    assert "analytics" not in default.to_camel_dict()
    custom = config_mod.ProxyConfig.model_validate({"upstream": {"budget": {"perDay": None}}})
    dumped = custom.to_camel_dict()
    assert dumped["upstream"]["budget"] == {
        "perMinute": 600,
        "perHour": 5000,
        "perDay": None,
        "backgroundPercent": 80,
    }
    assert config_mod.ProxyConfig.model_validate(dumped) == custom
    assert default.upstream.budget == config_mod.Budget(per_minute=600, per_hour=5000, per_day=10000)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "must start with postgresql://"),
        ("postgresql://u:secret@h:5432/db", "must not hold a password; set env ANALYTICS_DATABASE_PASSWORD"),
    ],
)
def test_an_analytics_url_is_postgresql_without_a_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_mod.ProxyConfig.model_validate({"analytics": {"database": {"url": url}}})
