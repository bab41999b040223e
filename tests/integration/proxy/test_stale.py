"""Stale data: served when the upstream fails (stale-if-error) and while refreshing (SWR).

The proxy process's clock cannot be moved from here, so nothing waits for an entry to age: the
test writes an entry fetched two minutes ago into L2, as another replica would have, and the
proxy finds it stale.
"""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from devcluster import openmeteo as om
from testbed import proxy_process
from tests.integration.proxy import scenario
from weather_proxy.cache import entries, store
from weather_proxy.upstream import client as upstream

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TTL, STALE_TTL, AGE = 60, 600, 120  # the shared entry is two minutes old: a minute past fresh


def _stale_in_l2(redis_url: str, lat: float, lon: float) -> upstream.Current:
    """Write a weather entry fetched ``AGE`` seconds ago into L2; returns its conditions."""
    current = upstream.Current("2026-12-07T10:00", 21.5, 10.0, 180.0, 1, True, "Europe/Paris")
    now = time.time()
    entry = entries.WeatherEntry.from_current(current, now - AGE, TTL, STALE_TTL)
    with redis.Redis.from_url(redis_url) as client:
        key = store.WEATHER_PREFIX + entries.weather_key(lat, lon)
        client.set(key, entry.encode(), px=int((entry.stale_until - now) * 1000))
    return current


def test_stale_if_error(
    openmeteo: om.OpenMeteoEmulator,
    redis_url: str,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    config = make_config(ttl=TTL, stale_ttl=STALE_TTL, failure_threshold=100)
    proxy = proxy_factory(config, scenario.standard_keys())
    cached = _stale_in_l2(redis_url, 48.85341, 2.3488)  # the emulator's Paris
    openmeteo.set_fault("forecast", "error500")  # geocoding still answers: Paris is found
    stale = scenario.weather(proxy.url, city="Paris")
    assert stale.status_code == 200, stale.text
    assert stale.headers["x-cache"] == "STALE"
    assert stale.json()["cache"]["status"] == "stale"
    assert stale.json()["cache"]["stale"] is True
    assert stale.json()["current"] == cached.to_json()
    assert int(stale.headers["age"]) >= AGE
    # Nothing stale to serve for a city never fetched: 503 with Retry-After.
    missing = scenario.weather(proxy.url, city="Cairo")
    assert missing.status_code == 503
    assert "retry-after" in missing.headers


def test_stale_while_revalidate(
    openmeteo: om.OpenMeteoEmulator,
    redis_url: str,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    # Upstream timeout far above the client's: a proxy waiting for upstream would fail here.
    config = make_config(ttl=TTL, stale_ttl=STALE_TTL, timeout=60.0)
    proxy = proxy_factory(config, scenario.standard_keys())
    _stale_in_l2(redis_url, 52.52437, 13.41053)  # the emulator's Berlin
    forecasts = openmeteo.calls("forecast")
    openmeteo.set_fault("forecast", "timeout")  # the refresh hangs until released
    stale = httpx.get(
        f"{proxy.url}/v1/weather",
        params={"city": "Berlin"},
        headers={"X-API-Key": scenario.KEY_ALPHA},
        timeout=10,
    )
    assert stale.status_code == 200
    assert stale.headers["x-cache"] == "STALE"
    # The background refresh reached the upstream.
    assert scenario.wait_until(lambda: openmeteo.calls("forecast") > forecasts, timeout=5)
    openmeteo.clear_faults()

    def refreshed() -> bool:
        r = scenario.weather(proxy.url, city="Berlin")
        return r.headers["x-cache"] in ("HIT", "MISS") and r.json()["cache"]["stale"] is False

    assert scenario.wait_until(refreshed, timeout=10, interval=0.2)
    metrics = httpx.get(f"{proxy.url}/metrics").text
    refreshes = scenario.metric_value(
        metrics, "weather_proxy_background_refreshes_total", {"result": "success"}
    )
    assert refreshes is not None
    assert refreshes >= 1
