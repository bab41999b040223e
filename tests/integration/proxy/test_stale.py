"""Stale data: served when the upstream fails (stale-if-error) and while refreshing (SWR)."""

from __future__ import annotations

import time

import httpx
import pytest

from devcluster import openmeteo as om
from tests.integration.proxy import scenario
from tests.support import proxy_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_stale_if_error(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    proxy = proxy_factory(make_config(ttl=1, stale_ttl=600, failure_threshold=100), scenario.standard_keys())
    fresh = scenario.weather(proxy.url, city="Paris")
    assert fresh.status_code == 200
    time.sleep(1.5)  # past the fresh TTL
    openmeteo.set_fault("all", "error500")
    stale = scenario.weather(proxy.url, city="Paris")
    assert stale.status_code == 200, stale.text
    assert stale.headers["x-cache"] == "STALE"
    assert stale.json()["cache"]["status"] == "stale"
    assert stale.json()["cache"]["stale"] is True
    assert stale.json()["current"] == fresh.json()["current"]
    assert int(stale.headers["age"]) >= 1
    # Nothing stale to serve for a city never fetched: 503 with Retry-After.
    missing = scenario.weather(proxy.url, city="Cairo")
    assert missing.status_code == 503
    assert "retry-after" in missing.headers


def test_stale_while_revalidate(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    # Upstream timeout far above the client's: a proxy waiting for upstream would fail here.
    config = make_config(ttl=1, stale_ttl=600, timeout=60.0)
    proxy = proxy_factory(config, scenario.standard_keys())
    assert scenario.weather(proxy.url, city="Berlin").status_code == 200
    forecasts = openmeteo.calls("forecast")
    time.sleep(1.5)
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
