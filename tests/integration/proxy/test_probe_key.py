"""A probe key (keys.yaml ``probe: true``, the operator's smoke key) on a real proxy process.

Real redis-server (the fleet's limits, quotas and per-key counters live there), real PostgreSQL
(the usage history and the key lifecycle audit), the Open-Meteo emulator. A probe key reads the
weather and nothing else; it is never limited and leaves no usage anywhere (no bucket, no quota
counter, no per-key counter in Redis, no history row, no key event), while its requests still
count in the HTTP request metrics: those are what a blue/green analysis reads.
"""

from __future__ import annotations

import datetime
import time

import httpx
import pytest
import redis

from devcluster import openmeteo as om
from testbed import proxy_process
from testbed.postgres_server import AnalyticsDatabase
from tests.integration.proxy import scenario
from tests.support import history
from weather_proxy import config as proxy_config
from weather_proxy import contract

pytestmark = [pytest.mark.integration]

PROBE_KEY = "wpk_probe_0f1e2d3c4b5a69788796a5b4c3d2e1f0"
PROBE_ID = "weather/fleet:smoke"
CONSUMER_KEY = "wpk_consumer_00112233445566778899aabbccddeeff"
CONSUMER_ID = "weather/consumer"
# The fleet default: a bucket of 2 and 3 requests a day. A consumer meets both at once; the probe neither.
SMALL = proxy_config.Limit(
    requests_per_minute=1, burst=2, quota=proxy_config.Quota(requests=3, period=proxy_config.QuotaPeriod.DAY)
)
PROBE_REQUESTS = 12


def keys() -> proxy_config.KeysFile:
    return proxy_config.KeysFile(
        keys=[
            proxy_process.key_entry(PROBE_ID, PROBE_KEY, probe=True),
            proxy_process.key_entry(
                CONSUMER_ID,
                CONSUMER_KEY,
                scopes=[
                    proxy_config.Scope.WEATHER_READ,
                    proxy_config.Scope.USAGE_READ,
                    proxy_config.Scope.ANALYTICS_READ,
                ],
            ),
        ]
    )


def get(proxy: proxy_process.ProxyProcess, path: str, key: str, **params: object) -> httpx.Response:
    return httpx.get(f"{proxy.url}{path}", params=params, headers={"X-API-Key": key}, timeout=30)


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def consumer_rows(database: AnalyticsDatabase) -> int:
    return int(history.query(database, "SELECT count(*) FROM requests WHERE key_id = %s", CONSUMER_ID)[0][0])


@pytest.fixture
def proxy(
    openmeteo: om.OpenMeteoEmulator,
    redis_url: str,
    analytics_database: AnalyticsDatabase,
    proxy_factory: proxy_process.ProxyFactory,
) -> proxy_process.ProxyProcess:
    cfg = scenario.build_config(
        openmeteo,
        redis_url,
        default_limit=SMALL,
        analytics=proxy_config.Analytics.model_validate(history.analytics(analytics_database)),
    )
    started = proxy_factory(cfg, keys(), env={contract.ENV_ANALYTICS_PASSWORD: analytics_database.password})
    assert scenario.wait_until(lambda: scenario.redis_up(started.url) == 1.0), started.log_tail()
    return started


def test_a_probe_key_is_never_limited_and_leaves_no_usage_but_counts_in_the_metrics(
    proxy: proxy_process.ProxyProcess, redis_url: str, analytics_database: AnalyticsDatabase
) -> None:
    before = httpx.get(f"{proxy.url}/metrics").text
    cities = ["Paris", "London", "Berlin"]
    probe = [get(proxy, "/v1/weather", PROBE_KEY, city=cities[i % 3]) for i in range(PROBE_REQUESTS)]
    assert [r.status_code for r in probe] == [200] * PROBE_REQUESTS, probe[-1].text
    # The headers of an untouched bucket: nothing was taken.
    assert {r.headers["ratelimit-remaining"] for r in probe} == {"2"}
    consumer = [get(proxy, "/v1/weather", CONSUMER_KEY, city="Paris").status_code for _ in range(3)]
    assert consumer == [200, 200, 429]  # the same default limit stops a consumer's third request

    after = httpx.get(f"{proxy.url}/metrics").text
    labels = {"route": "/v1/weather", "method": "GET", "status": "200"}
    served = scenario.metric_value(after, contract.METRIC_HTTP_REQUESTS_TOTAL, labels) or 0.0
    served_before = scenario.metric_value(before, contract.METRIC_HTTP_REQUESTS_TOTAL, labels) or 0.0
    assert served - served_before == PROBE_REQUESTS + 2

    # Per-key counters are flushed to Redis every second, history rows every 50 ms: wait past both,
    # with a consumer's row (written after the probe's requests) as the sign the writer got that far.
    assert scenario.wait_until(lambda: consumer_rows(analytics_database) == 3, timeout=20)
    time.sleep(2.5)
    with redis_client(redis_url) as client:
        stored = list(client.scan_iter())
        day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
        counted = client.hgetall(f"weather-proxy:usage:{day}:requests")
    assert [name for name in stored if "smoke" in name] == []  # no bucket, quota or per-key counter
    assert len([name for name in stored if CONSUMER_ID in name]) >= 3  # a consumer's: bucket, quota, cities
    assert counted == {CONSUMER_ID: "2"}
    rows = history.query(analytics_database, "SELECT key_id, count(*) FROM requests GROUP BY key_id")
    # No anonymous row for the probe's requests either: the fleet's analytics (read from these rows)
    # never see them.
    assert dict(rows) == {CONSUMER_ID: 3}
    audited = history.query(analytics_database, "SELECT DISTINCT key_id FROM key_events")
    assert [row[0] for row in audited] == [CONSUMER_ID]
    # The consumer's usage counts its own requests only (two served; the refused third is no request).
    usage = get(proxy, "/v1/usage", CONSUMER_KEY)
    assert usage.status_code == 200, usage.text
    assert usage.json()["requests"]["requests"] == 2


@pytest.mark.parametrize("path", ["/v1/usage", "/v1/analytics/top-cities"])
def test_a_probe_key_reads_the_weather_and_nothing_else(proxy: proxy_process.ProxyProcess, path: str) -> None:
    refused = get(proxy, path, PROBE_KEY)
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("/insufficient-scope")
    assert get(proxy, "/weather", PROBE_KEY, city="Paris").status_code == 200  # the alias too
