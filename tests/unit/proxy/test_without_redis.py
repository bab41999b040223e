"""Without Redis (no server): limits in memory, usage counted per process and per UTC day, and the
Redis URL from the environment. With a redis-server: tests/integration/proxy/test_redis_tiers_and_limits.py.
"""

from __future__ import annotations

import datetime

import pytest

from weather_proxy import analytics, redis_link, settings
from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.ratelimit import limiter as limiter_mod


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_limits_fall_back_to_memory_when_redis_is_down() -> None:
    metrics = metrics_mod.Metrics()
    link = redis_link.RedisLink(redis_link.make_client("redis://127.0.0.1:1/0", None), metrics)
    link.up = True
    lim = limiter_mod.Limiter(link)
    limit = config_mod.Limit(requests_per_minute=1, burst=0)
    try:
        first = await lim.hit("key:y", limit)
        second = await lim.hit("key:y", limit)
        peek = await lim.peek("key:y", limit)
    finally:
        await link.aclose()
    assert first.allowed
    assert not second.allowed  # enforced locally
    assert peek.remaining == 0
    assert not link.up
    assert link.last_error is not None
    assert metrics.redis_up._value.get() == 0


async def test_analytics_without_redis_counts_locally() -> None:
    usage = analytics.UsageAnalytics(redis_link.RedisLink(None, metrics_mod.Metrics()))
    usage.record("k", "paris")
    usage.record("k", "Paris")
    usage.record("k", None)
    assert not await usage.flush()
    doc = await usage.usage("k")
    assert doc["requests"] == 3
    assert doc["topCities"] == [{"city": "Paris", "requests": 2}]
    assert doc["scope"] == "process"


def test_env_overrides_redis_url() -> None:
    env = settings.ProxySettings.from_env(
        {"WEATHER_PROXY_REDIS_URL": "redis://r:6379/1", "REDIS_PASSWORD": "pw"}
    )
    cfg = env.apply(config_mod.ProxyConfig())
    assert cfg.redis is not None
    assert cfg.redis.url == "redis://r:6379/1"
    assert settings.ProxySettings.from_env({}).apply(cfg) is cfg
    assert env.secret("redis_password") == "pw"
    assert "pw" not in repr(env)
    assert settings.ProxySettings.from_env({"REDIS_PASSWORD": ""}).secret("redis_password") is None
    with pytest.raises(config_mod.ConfigError, match=r"^WEATHER_PROXY_REDIS_URL: ") as caught:
        settings.ProxySettings.from_env({"WEATHER_PROXY_REDIS_URL": "http://nope"})
    assert "http://nope" not in str(caught.value)


async def test_local_usage_starts_afresh_at_utc_midnight() -> None:
    clock = Clock(datetime.datetime(2026, 12, 7, 23, 59, 59, tzinfo=datetime.UTC).timestamp())
    usage = analytics.UsageAnalytics(redis_link.RedisLink(None, metrics_mod.Metrics()), clock=clock)
    usage.record("k", "Paris")
    usage.record("k", "Paris")
    before = await usage.usage("k")
    clock.now += 0.999  # 23:59:59.999: still the same day
    usage.record("k", "Lyon")
    same_day = await usage.usage("k")
    clock.now += 0.001  # midnight
    usage.record("k", "Lyon")
    after = await usage.usage("k")
    assert (before["day"], before["requests"]) == ("2026-12-07", 2)
    assert (same_day["day"], same_day["requests"]) == ("2026-12-07", 3)
    assert after["day"] == "2026-12-08"
    assert after["requests"] == 1  # what was counted before midnight stays with the day that ended
    assert after["topCities"] == [{"city": "Lyon", "requests": 1}]
