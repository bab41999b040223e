"""The HTTP contract of /v1/weather: body, cache headers, ETag, errors, auth, limits.

The contract: docs/contracts.md, HTTP API.

One proxy (create_app served by uvicorn in-process) with Redis and the emulator, shared by
the module; each test uses its own cities where cache state matters.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devcluster import openmeteo as om
from testbed import proxy_process
from testbed import redis_server as rs
from tests.integration.proxy import scenario

pytestmark = pytest.mark.integration

# Words the description of each WMO code the emulator emits must contain (FIELD-NOTES).
WMO = {
    0: "clear", 1: "clear", 2: "cloudy", 3: "overcast", 45: "fog", 48: "fog", 51: "drizzle",
    53: "drizzle", 55: "drizzle", 61: "rain", 63: "rain", 65: "rain", 71: "snow", 73: "snow", 75: "snow",
    80: "shower", 81: "shower", 82: "shower", 95: "thunderstorm",
}  # fmt: skip
CURRENT_VARIABLES = ["temperature_2m", "wind_speed_10m", "wind_direction_10m", "weather_code", "is_day"]


class Api:
    def __init__(self, url: str, emulator: om.OpenMeteoEmulator) -> None:
        self.url = url
        self.emulator = emulator

    def get(self, path: str, key: str | None = scenario.KEY_ALPHA, **kwargs: object) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
        if key:
            headers["X-API-Key"] = key
        return httpx.get(f"{self.url}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def api(redis_server: rs.RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    if not redis_server.is_running():
        redis_server.restart()
    redis_server.flushall()
    keys = proxy_process.KubeVolume(tmp_path_factory.mktemp("keys"))
    keys.write({"keys.yaml": proxy_process.to_yaml(scenario.standard_keys())})
    with om.OpenMeteoEmulator() as emulator:
        config = scenario.build_config(emulator, redis_server.url)
        config = config.model_copy(
            update={"auth": config.auth.model_copy(update={"keys_file": str(keys.file("keys.yaml"))})}
        )
        proxy = proxy_process.InProcessProxy(config).start()
        try:
            yield Api(proxy.url, emulator)
        finally:
            proxy.stop()


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    for field in ("type", "title", "detail", "instance"):
        assert problem[field], field
    assert problem["instance"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return problem  # type: ignore[no-any-return]


def test_city_body_matches_the_contract_and_the_upstream_data(api: Api) -> None:
    r = api.get("/v1/weather", params={"city": "Paris"})
    assert r.status_code == 200, r.text
    body = r.json()
    location = body["location"]
    assert location["name"] == "Paris"
    assert location["country"] == "FR"
    assert location["latitude"] == pytest.approx(48.85341, abs=1e-3)
    assert location["longitude"] == pytest.approx(2.3488, abs=1e-3)
    assert location["timezone"] == "Europe/Paris"
    assert body["source"] == "open-meteo"
    assert body["cache"] == {"status": "miss", "ageSeconds": 0, "stale": False}
    # The numbers are the emulator's, for the place the proxy asked about.
    (forecast_key,) = api.emulator.call_keys("forecast")
    lat, lon = (float(v) for v in forecast_key.split(","))
    now = datetime.datetime.now(datetime.UTC)
    upstream = om.current_weather(lat, lon, CURRENT_VARIABLES, now)
    current = body["current"]
    if current["time"] == upstream["time"]:  # not across a 15-minute boundary
        assert current["temperatureC"] == upstream["temperature_2m"]
        assert current["windSpeedKmh"] == upstream["wind_speed_10m"]
        assert current["windDirectionDeg"] == upstream["wind_direction_10m"]
        assert current["weatherCode"] == upstream["weather_code"]
        assert current["isDay"] is bool(upstream["is_day"])
    assert WMO[current["weatherCode"]] in current["description"].lower()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", current["time"])


def test_miss_then_hit_headers(api: Api) -> None:
    first = api.get("/v1/weather", params={"city": "Berlin"})
    assert first.headers["x-cache"] == "MISS"
    second = api.get("/v1/weather", params={"city": "Berlin"})
    assert second.status_code == 200
    assert second.headers["x-cache"] == "HIT"
    assert second.json()["cache"]["status"] == "hit"
    assert second.json()["current"] == first.json()["current"]
    age = int(second.headers["age"])
    assert 0 <= age <= 300
    match = re.fullmatch(r"public, max-age=(\d+)(, .*)?", second.headers["cache-control"])
    assert match, second.headers["cache-control"]
    assert int(match.group(1)) <= 300
    assert second.headers["etag"] == first.headers["etag"]
    assert api.emulator.calls("search", "berlin") == 1


def test_if_none_match_gives_304(api: Api) -> None:
    first = api.get("/v1/weather", params={"city": "Tokyo"})
    etag = first.headers["etag"]
    r = api.get("/v1/weather", params={"city": "Tokyo"}, headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    assert r.headers["cache-control"].startswith("public, max-age=")
    other = api.get("/v1/weather", params={"city": "Tokyo"}, headers={"If-None-Match": '"not-it"'})
    assert other.status_code == 200


def test_lat_lon_skips_geocoding(api: Api) -> None:
    api.emulator.reset()
    r = api.get("/v1/weather", params={"lat": "40.4", "lon": "-3.7"})
    assert r.status_code == 200, r.text
    assert r.json()["location"]["latitude"] == pytest.approx(40.4, abs=1e-2)
    assert r.json()["location"]["longitude"] == pytest.approx(-3.7, abs=1e-2)
    assert api.emulator.calls("search") == 0
    assert api.emulator.calls("forecast") == 1


def test_country_picks_the_right_city(api: Api) -> None:
    r = api.get("/v1/weather", params={"city": "London", "country": "CA"})
    assert r.status_code == 200, r.text
    assert r.json()["location"]["country"] == "CA"
    assert r.json()["location"]["timezone"] == "America/Toronto"


def test_weather_alias_is_the_same_handler(api: Api) -> None:
    r = api.get("/weather", params={"city": "Rome"})
    assert r.status_code == 200
    assert r.json()["location"]["name"] == "Rome"


def test_request_id_is_echoed_or_generated(api: Api) -> None:
    mine = str(uuid.uuid4())
    echoed = api.get("/v1/weather", params={"city": "Rome"}, headers={"X-Request-ID": mine})
    assert echoed.headers["x-request-id"] == mine
    generated = api.get("/v1/weather", params={"city": "Rome"})
    assert generated.headers["x-request-id"]
    assert generated.headers["x-request-id"] != mine


def test_unknown_city_is_404(api: Api) -> None:
    problem = assert_problem(api.get("/v1/weather", params={"city": "Atlantisxyz"}), 404)
    assert "Atlantisxyz" in str(problem["detail"])


@pytest.mark.parametrize(
    "params",
    [
        {"city": ""},
        {"city": "x" * 300},
        {"lat": "91", "lon": "0"},
        {"lat": "0", "lon": "181"},
        {"lat": "abc", "lon": "0"},
        {"lat": "10"},
        {"city": "Paris", "lat": "1", "lon": "2"},
        {},
    ],
    ids=[
        "empty-city",
        "long-city",
        "lat-range",
        "lon-range",
        "lat-nan",
        "lat-only",
        "city-and-coords",
        "none",
    ],
)
def test_bad_input_is_400(api: Api, params: dict[str, str]) -> None:
    assert_problem(api.get("/v1/weather", params=params), 400)


def test_missing_key_is_401(api: Api) -> None:
    assert_problem(api.get("/v1/weather", key=None, params={"city": "Paris"}), 401)


@pytest.mark.parametrize("key", ["wpk_unknown_000", scenario.KEY_EXPIRED, scenario.KEY_DISABLED])
def test_unknown_expired_disabled_keys_are_403(api: Api, key: str) -> None:
    r = api.get("/v1/weather", key=key, params={"city": "Paris"})
    assert_problem(r, 403)
    assert key not in r.text


def test_keyed_responses_carry_ratelimit_headers(api: Api) -> None:
    first = api.get("/v1/weather", params={"city": "Paris"})
    second = api.get("/v1/weather", params={"city": "Paris"})
    for r in (first, second):
        assert int(r.headers["ratelimit-limit"]) == 1000  # the bucket (burst) of the default limit
        assert int(r.headers["ratelimit-reset"]) >= 0
        assert 0 <= int(r.headers["ratelimit-remaining"]) < 1000  # each took a token


def test_exceeding_the_limit_gives_429_with_retry_after(api: Api) -> None:
    allowed = scenario.TINY_LIMIT.capacity + 1  # a bucket of one, and perhaps one refill (every 20 s)
    responses = [
        api.get("/v1/weather", key=scenario.KEY_TINY, params={"city": "Paris"}) for _ in range(allowed + 3)
    ]
    statuses = [r.status_code for r in responses]
    assert statuses[0] == 200
    assert 429 in statuses
    assert statuses.count(200) <= allowed
    # Once refused, refused until the next token (20 s at 3/min).
    assert set(statuses[statuses.index(429) :]) == {429}
    refused = responses[statuses.index(429)]
    assert_problem(refused, 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) >= int(refused.headers["ratelimit-reset"]) - 1


def test_usage_reports_limit_remaining_and_counts(api: Api) -> None:
    before = api.get("/v1/usage")
    assert before.status_code == 200, before.text
    body = before.json()
    assert body["keyId"] == "weather/alpha"
    assert body["limit"]["requestsPerMinute"] == 10_000
    assert body["limit"]["burst"] == 1000
    assert 0 <= body["remaining"] <= body["limit"]["window"]
    assert "ratelimit-remaining" in before.headers
    counted = body["requests"].get("requests", 0)
    for _ in range(3):
        assert api.get("/v1/weather", params={"city": "Vienna"}).status_code == 200

    def counted_vienna() -> bool:
        usage = api.get("/v1/usage").json()["requests"]
        top = {c["city"].lower(): c["requests"] for c in usage.get("topCities", [])}
        return usage.get("requests", 0) >= counted + 3 and top.get("vienna", 0) >= 3

    assert scenario.wait_until(counted_vienna, timeout=15, interval=0.25)
    assert scenario.KEY_ALPHA not in api.get("/v1/usage").text


def test_usage_needs_a_key(api: Api) -> None:
    assert_problem(api.get("/v1/usage", key=None), 401)


def test_health_and_metrics(api: Api) -> None:
    assert api.get("/health/live", key=None).status_code == 200
    ready = api.get("/health/ready", key=None)
    assert ready.status_code == 200
    assert ready.headers["content-type"].startswith("application/json")
    metrics = api.get("/metrics", key=None)
    assert metrics.status_code == 200
    assert scenario.metric_value(metrics.text, "weather_proxy_redis_up") == 1.0
    assert scenario.metric_value(metrics.text, "weather_proxy_upstream_breaker_state") == 0.0
    served = scenario.metric_value(
        metrics.text, "weather_proxy_http_requests_total", {"status": "200", "method": "GET"}
    )
    assert served is not None
    assert served >= 1
    for key in scenario.ALL_PLAINTEXT_KEYS:
        assert key not in metrics.text


def test_openapi_and_docs_are_served(api: Api) -> None:
    schema = api.get("/openapi.json", key=None).json()
    assert "/v1/weather" in schema["paths"]
    assert api.get("/docs", key=None).status_code == 200
