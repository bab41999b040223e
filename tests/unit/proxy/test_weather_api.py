"""The HTTP contract of /v1/weather (docs/contracts.md, HTTP API) against the emulator, memory-only."""

from __future__ import annotations

import re

import orjson
import pytest

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import AppFactory
from weather_proxy.http import problems
from weather_proxy.routes import weather


async def test_city_miss_then_hit_body_and_headers(
    proxy: AppFactory, openmeteo: om.OpenMeteoEmulator
) -> None:
    async with proxy() as (_app, client):
        first = await client.get("/v1/weather", params={"city": "Paris"})
        second = await client.get("/weather", params={"city": "paris"})
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"location", "current", "cache", "source"}
    assert body["location"]["name"] == "Paris"
    assert body["location"]["country"] == "FR"
    assert body["location"]["timezone"] == "Europe/Paris"
    assert set(body["current"]) == {
        "time",
        "temperatureC",
        "windSpeedKmh",
        "windDirectionDeg",
        "weatherCode",
        "description",
        "isDay",
    }
    assert body["cache"] == {"status": "miss", "ageSeconds": 0, "stale": False}
    assert body["source"] == "open-meteo"
    assert first.headers["x-cache"] == "MISS"
    assert second.json()["cache"]["status"] == "hit"
    assert second.headers["x-cache"] == "HIT"
    assert second.headers["cache-control"].startswith("public, max-age=")
    assert "stale-while-revalidate=3600" in second.headers["cache-control"]
    assert second.headers["age"] == "0"
    assert second.headers["etag"] == first.headers["etag"]
    assert openmeteo.calls("forecast") == 1
    assert openmeteo.calls("search") == 1  # the geocoding answer is cached too


async def test_coordinates_share_the_city_entry(proxy: AppFactory, openmeteo: om.OpenMeteoEmulator) -> None:
    async with proxy() as (_app, client):
        city = await client.get("/v1/weather", params={"city": "Paris"})
        loc = city.json()["location"]
        coords = await client.get(
            "/v1/weather", params={"lat": str(loc["latitude"]), "lon": str(loc["longitude"])}
        )
    assert coords.status_code == 200
    assert coords.headers["x-cache"] == "HIT"
    assert coords.json()["location"]["name"] is None
    assert coords.json()["current"] == city.json()["current"]
    assert openmeteo.calls("forecast") == 1


async def test_etag_gives_304(proxy: AppFactory) -> None:
    async with proxy() as (_app, client):
        first = await client.get("/v1/weather", params={"city": "Paris"})
        again = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"If-None-Match": first.headers["etag"]}
        )
        other = await client.get("/v1/weather", params={"city": "Paris"}, headers={"If-None-Match": '"nope"'})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert "max-age=" in again.headers["cache-control"]
    assert other.status_code == 200


async def test_unknown_city_is_404_and_cached(proxy: AppFactory, openmeteo: om.OpenMeteoEmulator) -> None:
    async with proxy() as (_app, client):
        first = await client.get("/v1/weather", params={"city": "Nowhereville Xq"})
        second = await client.get("/v1/weather", params={"city": "nowhereville xq"})
    assert first.status_code == second.status_code == 404
    assert first.headers["content-type"] == "application/problem+json"
    assert first.json()["title"] == "City not found"
    assert openmeteo.calls("search") == 1


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "Give city, or lat and lon"),
        ("city=", "city: must not be empty"),
        ("city=%20%20", "city: must not be empty"),
        ("city=" + "x" * 101, "at most 100"),
        ("city=Paris&lat=1&lon=2", "not both"),
        ("lat=1", "together"),
        ("lon=1", "together"),
        ("lat=91&lon=0", "lat: must be between"),
        ("lat=0&lon=-181", "lon: must be between"),
        ("lat=abc&lon=0", "lat: must be a number"),
        ("lat=nan&lon=0", "lat: must be a number"),
        ("city=Paris&country=FRA", "country"),
        ("lat=1&lon=2&country=FR", "country: only goes with city"),
    ],
)
async def test_bad_input_is_400_problem(proxy: AppFactory, query: str, fragment: str) -> None:
    async with proxy() as (_app, client):
        response = await client.get("/v1/weather?" + query, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert fragment in problem["detail"]
    assert problem["status"] == 400
    assert problem["instance"] == "req-42"
    assert problem["type"].startswith("https://")


async def test_country_narrows_the_search(proxy: AppFactory, openmeteo: om.OpenMeteoEmulator) -> None:
    async with proxy() as (_app, client):
        response = await client.get("/v1/weather", params={"city": "Paris", "country": "fr"})
    assert response.status_code == 200
    assert response.json()["location"]["country"] == "FR"


async def test_unknown_route_and_method_are_problems(proxy: AppFactory) -> None:
    async with proxy() as (_app, client):
        missing = await client.get("/v2/nothing")
        wrong = await client.post("/v1/weather")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert wrong.status_code == 405
    assert wrong.json()["status"] == 405


async def test_security_headers_and_request_id(proxy: AppFactory) -> None:
    async with proxy() as (_app, client):
        plain = await client.get("/health/live")
        tls = await client.get(
            client.base_url.copy_with(scheme="https", path="/health/live"), headers={"X-Request-ID": "abc-1"}
        )
        # Not from a trusted proxy (http.trustedProxies is empty): a client's word is not https.
        claimed = await client.get("/health/live", headers={"X-Forwarded-Proto": "https"})
        bogus = await client.get("/health/live", headers={"X-Request-ID": "x" * 500})
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in plain.headers
    assert len(plain.headers["x-request-id"]) == 32
    assert tls.headers["strict-transport-security"].startswith("max-age=")
    assert tls.headers["x-request-id"] == "abc-1"
    assert "strict-transport-security" not in claimed.headers
    assert bogus.headers["x-request-id"] != "x" * 500


async def test_gzip_above_minimum_size(proxy: AppFactory) -> None:
    async with proxy(http={"gzipMinimumSize": 10}) as (_app, client):
        response = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"Accept-Encoding": "gzip"}
        )
    assert response.headers["content-encoding"] == "gzip"
    assert response.json()["location"]["name"] == "Paris"


async def test_cors_and_trusted_hosts(proxy: AppFactory) -> None:
    sections = {"http": {"cors": {"allowOrigins": ["https://app.example"]}, "trustedHosts": ["proxy.test"]}}
    async with proxy(**sections) as (_app, client):
        ok = await client.get("/health/live", headers={"Origin": "https://app.example"})
        bad_host = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"Host": "evil.example", "X-Request-ID": "rq-1"}
        )
        bad_preflight = await client.options(
            "/v1/weather",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    # Starlette's middlewares answer these in plain text: they still reach the client as problems.
    assert bad_host.status_code == 400
    assert bad_host.headers["content-type"] == "application/problem+json"
    problem = bad_host.json()
    assert problem["instance"] == "rq-1"
    assert problem["detail"] == "Invalid host header"
    assert problem["status"] == 400
    assert int(bad_host.headers["content-length"]) == len(bad_host.content)
    assert bad_host.headers["x-request-id"] == "rq-1"
    assert bad_preflight.status_code == 400
    assert bad_preflight.headers["content-type"] == "application/problem+json"
    assert "CORS" in bad_preflight.json()["detail"]


async def test_openapi_documents_parameters_and_errors(proxy: AppFactory) -> None:
    async with proxy() as (_app, client):
        doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/weather"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"place", "X-API-Key", "If-None-Match"}
    assert {"200", "304", "400", "401", "403", "404", "429", "500", "503", "504"} <= set(op["responses"])
    assert op["summary"]
    assert "deprecated" not in op
    assert doc["paths"]["/weather"]["get"]["deprecated"] is True
    responses = op["responses"]
    assert set(responses["200"]["headers"]) == {
        "X-Cache", "Age", "Cache-Control", "ETag", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"
    }  # fmt: skip
    assert responses["304"]["headers"]["ETag"]["required"] is True
    assert {"Retry-After", "RateLimit-Reset"} <= set(responses["429"]["headers"])
    assert set(responses["503"]["headers"]) == {"Retry-After"}
    assert "/v1/usage" in doc["paths"]
    assert "/health/ready" in doc["paths"]


async def test_the_place_parameter_allows_exactly_what_the_proxy_accepts(proxy: AppFactory) -> None:
    """The oneOf of ``place``: city (+ country) or lat+lon, nothing else; each documented form is 200."""
    async with proxy() as (_app, client):
        doc = (await client.get("/openapi.json")).json()
        place = next(p for p in doc["paths"]["/v1/weather"]["get"]["parameters"] if p["name"] == "place")
        assert (place["in"], place["style"], place["explode"], place["required"]) == (
            "query",
            "form",
            True,
            True,
        )
        by_city, by_coordinates = place["schema"]["oneOf"]
        for branch in (by_city, by_coordinates):
            assert branch["additionalProperties"] is False
        assert (set(by_city["properties"]), by_city["required"]) == ({"city", "country"}, ["city"])
        assert (set(by_coordinates["properties"]), by_coordinates["required"]) == (
            {"lat", "lon"},
            ["lat", "lon"],
        )
        for example in place["examples"].values():
            answer = await client.get("/v1/weather", params=example["value"])
            assert answer.status_code == 200, example
        # What the schema excludes (both forms at once, half a pair) the proxy rejects.
        for params in ({"city": "Paris", "lat": 1, "lon": 2}, {"lat": 1}, {"country": "FR"}):
            rejected = await client.get("/v1/weather", params=params)
            assert rejected.status_code == 400, params


async def test_the_documented_headers_are_sent_on_200_and_304(proxy: AppFactory) -> None:
    """Every header the document marks required on 200 and 304 is on the answers, with a valid value."""
    async with proxy() as (_app, client):
        doc = (await client.get("/openapi.json")).json()
        first = await client.get("/v1/weather", params={"city": "Paris"})
        again = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"If-None-Match": first.headers["etag"]}
        )
    assert (first.status_code, again.status_code) == (200, 304)
    responses = doc["paths"]["/v1/weather"]["get"]["responses"]
    for answer, status in ((first, "200"), (again, "304")):
        for name, header in responses[status]["headers"].items():
            assert header["required"] is True
            value = answer.headers[name]
            schema = header["schema"]
            if schema["type"] == "integer":
                assert int(value) >= schema["minimum"], (name, value)
            elif "enum" in schema:
                assert value in schema["enum"], (name, value)
            elif "pattern" in schema:
                assert re.search(schema["pattern"], value), (name, value)


async def test_unhandled_error_is_a_500_problem_without_details(proxy: AppFactory) -> None:
    async with proxy() as (app, client):
        rt = app.state.runtime

        async def explode(*_args: object) -> None:
            raise RuntimeError("secret internals wpk_should_not_leak")

        rt.parts.service.locate = explode
        response = await client.get("/v1/weather", params={"city": "Paris"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert orjson.loads(response.content)["status"] == 500


def test_the_query_memo_holds_only_short_valid_queries() -> None:
    """No memory keyed by what a client makes up: refused and long queries are parsed, never kept."""
    weather._known_query.cache_clear()
    for n in range(50):
        with pytest.raises(problems.ProblemError):
            weather.parse_query(b"city=Paris&x=" + b"a" * n)
    long_place = b"city=" + b"%C3%A9" * 30  # 30 characters, 185 bytes: valid, but not kept
    assert weather.parse_query(long_place).city == "\u00e9" * 30
    assert weather._known_query.cache_info().currsize == 0
    assert weather.parse_query(b"city=Paris").city == "Paris"
    assert weather.parse_query(b"city=Paris").city == "Paris"
    info = weather._known_query.cache_info()
    assert (info.currsize, info.hits) == (1, 1)
