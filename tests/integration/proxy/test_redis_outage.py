"""Redis down: the proxy keeps serving (L1 cache, local limits), says so, and recovers."""

from __future__ import annotations

import httpx
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from testbed import redis_server as rs
from tests.integration.proxy import scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _redis_up(url: str) -> float | None:
    return scenario.metric_value(httpx.get(f"{url}/metrics").text, "weather_proxy_redis_up")


def test_redis_killed_and_restarted(
    openmeteo: om.OpenMeteoEmulator,
    redis_server: rs.RedisServer,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    proxy = proxy_factory(make_config(), scenario.standard_keys())
    assert scenario.wait_until(lambda: _redis_up(proxy.url) == 1.0)
    assert scenario.weather(proxy.url, city="Paris").status_code == 200

    redis_server.kill()
    hit = scenario.weather(proxy.url, city="Paris")
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT"  # from L1
    fresh = scenario.weather(proxy.url, city="Madrid")  # a miss goes upstream, without Redis
    assert fresh.status_code == 200, fresh.text
    assert "ratelimit-limit" in fresh.headers  # local limits still apply
    assert scenario.wait_until(lambda: _redis_up(proxy.url) == 0.0)
    ready = httpx.get(f"{proxy.url}/health/ready")
    assert ready.status_code == 200  # degraded, not unready
    assert "redis" in ready.text.lower()
    degraded_body = ready.text

    redis_server.restart()
    assert scenario.wait_until(lambda: _redis_up(proxy.url) == 1.0, timeout=15)
    recovered = httpx.get(f"{proxy.url}/health/ready")
    assert recovered.status_code == 200
    assert recovered.text != degraded_body
    assert scenario.weather(proxy.url, city="Lisbon").status_code == 200
    # Shared state is used again: the fleet cache in Redis holds the new entry.
    assert redis_server.command("DBSIZE") != b":0"
