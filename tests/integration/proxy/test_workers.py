"""Several server processes behind one port: each answers, they share Redis, metrics add up per pod."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from devcluster import openmeteo as om
from tests.integration.proxy import scenario
from tests.support import proxy_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_workers_serve_one_port_and_their_metrics_add_up(
    openmeteo: om.OpenMeteoEmulator,
    make_config: scenario.ConfigBuilder,
    proxy_factory: proxy_process.ProxyFactory,
) -> None:
    proxy = proxy_factory(make_config(workers=2), scenario.standard_keys())
    url = f"{proxy.url}/v1/weather"
    headers = {"X-API-Key": scenario.KEY_ALPHA}
    assert httpx.get(url, params={"city": "Paris"}, headers=headers, timeout=10).status_code == 200

    def get(_: int) -> httpx.Response:
        with httpx.Client(timeout=10) as client:  # a connection of its own, so both workers are reached
            return client.get(url, params={"city": "Paris"}, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(get, range(200)))
    assert {a.status_code for a in answers} == {200}
    pids = {line for line in proxy.log_text().splitlines() if "Started server process" in line}
    assert len(pids) == 2  # two workers started
    # Whichever worker answers the scrape counts the requests of both (multiprocess mode); the
    # other worker adds its batched counts within a second.
    served = {"route": "/v1/weather", "status": "200"}
    total = "weather_proxy_http_requests_total"

    def scraped() -> str:
        return httpx.get(f"{proxy.url}/metrics", timeout=10).text

    assert scenario.wait_until(lambda: scenario.metric_value(scraped(), total, served) == 201, timeout=5)
    for _ in range(4):  # whichever worker answers
        assert scenario.metric_value(scraped(), total, served) == 201
    metrics = scraped()
    assert scenario.metric_value(metrics, "weather_proxy_redis_up") == 1.0
    # Each worker has its own L1 and they share L2: the second found Paris there, upstream was called once.
    assert openmeteo.calls("forecast") == 1
    l2_hit = {"tier": "l2", "result": "hit"}
    l2_hits = scenario.metric_value(metrics, "weather_proxy_cache_requests_total", l2_hit)
    assert l2_hits is not None
    assert l2_hits >= 1
    assert proxy.stop() == 0
