"""Server processes behind one port (uvicorn, granian): each answers, they share Redis, metrics add up."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from tests.integration.proxy import scenario
from weather_proxy import config as proxy_config

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

    def scraped() -> str:
        return httpx.get(f"{proxy.url}/metrics", timeout=10).text

    total = "weather_proxy_http_requests_total"
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


@pytest.mark.parametrize("workers", [1, 2])
def test_granian_serves_the_same_contract(
    make_config: scenario.ConfigBuilder, proxy_factory: proxy_process.ProxyFactory, workers: int
) -> None:
    cfg = make_config(server=proxy_config.Server.GRANIAN, workers=workers)
    proxy = proxy_factory(cfg, scenario.standard_keys())
    # Live means one worker answers. Stopped while another was still starting (a loaded machine, a
    # worker importing under coverage), granian waited its kill timeout for it: the graceful stop
    # asserted below is that of a server whose every worker runs.
    assert scenario.wait_until(
        lambda: proxy.log_text().count('"weather proxy started"') == workers, timeout=60
    ), proxy.log_tail()
    url = f"{proxy.url}/v1/weather"
    headers = {"X-API-Key": scenario.KEY_ALPHA, "X-Request-ID": "granian-1"}
    first = httpx.get(url, params={"city": "Paris"}, headers=headers, timeout=10)
    again = httpx.get(url, params={"city": "Paris"}, headers=headers, timeout=10)
    missing = httpx.get(url, params={"city": "Paris"}, timeout=10)
    assert first.status_code == again.status_code == 200
    assert again.headers["x-cache"] in ("HIT", "MISS")  # MISS when the other worker answered
    assert again.json()["location"]["name"] == "Paris"
    assert again.headers["x-request-id"] == "granian-1"
    assert int(again.headers["content-length"]) == len(again.content)
    assert {"etag", "age", "cache-control", "ratelimit-remaining"} <= set(again.headers)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    served = {"route": "/v1/weather", "status": "200"}
    assert scenario.wait_until(
        lambda: (
            scenario.metric_value(
                httpx.get(f"{proxy.url}/metrics", timeout=10).text,
                "weather_proxy_http_requests_total",
                served,
            )
            == 2
        ),
        timeout=5,
    )
    assert proxy.stop() == 0
    assert "weather proxy stopped" in proxy.log_text()
