"""Redis and the upstream down together: cached cities are served stale, quietly, and all recovers.

A real redis-server, the Open-Meteo emulator and a ``python -m weather_proxy`` process. The
proxy's clock cannot be moved from here, so the scenarios wait (a second or two) past TTLs
that are made short for them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from testbed import redis_server as rs
from tests.integration.proxy import scenario
from weather_proxy import config as proxy_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MEMORY_TTL = 1.0
FRESH_TTL = 1
STALE_TTL = 600
SWR_LOGGER = "weather_proxy.cache.swr"


def _config(make_config: scenario.ConfigBuilder, **options: Any) -> proxy_config.ProxyConfig:
    cache = proxy_config.Cache(
        ttl_seconds=FRESH_TTL,
        stale_ttl_seconds=STALE_TTL,
        memory=proxy_config.MemoryCache(ttl_seconds=MEMORY_TTL),
    )
    # A breaker that never opens here: every request really tries the failing upstream.
    return make_config(cache=cache, failure_threshold=1000, **options)


def _refreshes(url: str, result: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    value = scenario.metric_value(text, "weather_proxy_background_refreshes_total", {"result": result})
    return value or 0.0


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _log_records(proxy: proxy_process.ProxyProcess) -> list[dict[str, Any]]:
    records = []
    for line in proxy.log_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "logger" in record:
            records.append(record)
    return records


def test_redis_and_upstream_down_serves_stale_for_the_stale_window(
    openmeteo: om.OpenMeteoEmulator,
    redis_server: rs.RedisServer,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    proxy = proxy_factory(_config(make_config), scenario.standard_keys())
    assert scenario.wait_until(lambda: scenario.redis_up(proxy.url) == 1.0)
    warm = scenario.weather(proxy.url, city="Paris")
    warmed_at = time.time()  # the entry was stored before this answer: it is older than this instant
    assert warm.status_code == 200, warm.text

    redis_server.kill()
    assert scenario.wait_until(lambda: scenario.redis_up(proxy.url) == 0.0)
    openmeteo.set_fault("all", "error500")
    # Past the fresh TTL and the memory TTL (L1's lifetime while Redis is there) with a margin.
    _sleep_until(warmed_at + max(MEMORY_TTL, FRESH_TTL) + 1.0)

    for _ in range(3):
        stale = scenario.weather(proxy.url, city="Paris")
        assert stale.status_code == 200, stale.text
        assert stale.headers["x-cache"] == "STALE"
        assert stale.json()["current"] == warm.json()["current"]
        assert int(stale.headers["age"]) >= 1
        time.sleep(0.5)
    missing = scenario.weather(proxy.url, city="Cairo")
    assert missing.status_code == 503
    assert missing.headers["content-type"] == "application/problem+json"

    # Redis comes back empty while the upstream still fails: the local copy still stands in.
    redis_server.restart()
    assert scenario.wait_until(lambda: scenario.redis_up(proxy.url) == 1.0, timeout=15)
    still = scenario.weather(proxy.url, city="Paris")
    assert still.status_code == 200, still.text
    assert still.headers["x-cache"] == "STALE"

    # Both back: fresh data again, shared through Redis.
    openmeteo.clear_faults()

    def fresh_again() -> bool:
        r = scenario.weather(proxy.url, city="Paris")
        return r.status_code == 200 and r.headers["x-cache"] in ("HIT", "MISS")

    assert scenario.wait_until(fresh_again, timeout=15, interval=0.2)
    assert redis_server.command("EXISTS", "weather-proxy:wx:48.85,2.35") == b":1"
    assert scenario.weather(proxy.url, city="Lisbon").headers["x-cache"] == "MISS"
    assert redis_server.command("EXISTS", "weather-proxy:wx:38.72,-9.13") == b":1"


def test_an_upstream_outage_makes_few_refreshes_and_few_log_lines(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    proxy = proxy_factory(_config(make_config), scenario.standard_keys())
    assert scenario.weather(proxy.url, city="Berlin").status_code == 200
    # After the answer: the entry was stored before it, so it is stale by warmed_at + FRESH_TTL however
    # long the miss took (under a loaded machine it can take longer than the 0.2 s margin).
    warmed_at = time.time()
    _sleep_until(warmed_at + FRESH_TTL + 0.2)
    openmeteo.set_fault("forecast", "error500")
    forecasts = openmeteo.calls("forecast")

    requests = 50
    with httpx.Client(headers={"X-API-Key": scenario.KEY_ALPHA}, timeout=30) as client:
        for _ in range(requests):
            served = client.get(f"{proxy.url}/v1/weather", params={"city": "Berlin"})
            assert served.status_code == 200, served.text
            assert served.headers["x-cache"] == "STALE"
            time.sleep(0.005)  # let each refresh end: a refresh in flight is not repeated anyway
    assert scenario.wait_until(lambda: _refreshes(proxy.url, "failure") >= 1)
    refreshes = openmeteo.calls("forecast") - forecasts
    # Backoff starts at one second: the burst (well under a second) gets one refresh, maybe two.
    assert 1 <= refreshes <= 2, refreshes

    records = _log_records(proxy)
    swr_warnings = [r for r in records if r["logger"] == SWR_LOGGER and r["level"] == "warning"]
    swr_infos = [r for r in records if r["logger"] == SWR_LOGGER and r["level"] == "info"]
    http_infos = [r for r in records if r["logger"] in ("httpx", "httpcore") and r["level"] == "info"]
    assert len(swr_warnings) == 1, swr_warnings
    assert swr_infos == []
    assert http_infos == []

    # The upstream is back: within the backoff the key is refreshed, and that is logged once.
    openmeteo.clear_faults()

    def refreshed() -> bool:
        return scenario.weather(proxy.url, city="Berlin").headers["x-cache"] in ("HIT", "MISS")

    assert scenario.wait_until(refreshed, timeout=10, interval=0.2)
    records = _log_records(proxy)
    recovered = [r for r in records if r["logger"] == SWR_LOGGER and r["level"] == "info"]
    assert len(recovered) == 1, recovered
    assert len([r for r in records if r["logger"] == SWR_LOGGER and r["level"] == "warning"]) == 1
