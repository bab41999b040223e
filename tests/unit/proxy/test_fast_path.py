"""The weather fast path answers exactly as the routed FastAPI handler, and lets everything else through."""

from __future__ import annotations

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import AppFactory, build_config, running

PER_REQUEST = {"x-request-id", "age", "cache-control", "ratelimit-remaining", "ratelimit-reset"}


async def test_fast_path_and_routed_handler_agree(openmeteo: om.OpenMeteoEmulator) -> None:
    cfg = build_config(openmeteo)
    async with running(cfg) as (_app, client), running(cfg, fast_path=False) as (routed_app, routed_client):
        await client.get("/v1/weather", params={"city": "Paris"})
        fast = await client.get("/v1/weather", params={"city": "Paris"})
        await routed_client.get("/v1/weather", params={"city": "Paris"})
        routed = await routed_client.get("/weather", params={"city": "Paris"})
        not_modified = await routed_client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"If-None-Match": fast.headers["etag"]}
        )
        routed_metrics = routed_app.state.runtime.metrics.render().decode()
    assert fast.status_code == routed.status_code == 200
    assert fast.content == routed.content
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    assert int(routed.headers["content-length"]) == len(routed.content)
    same = set(routed.headers) - PER_REQUEST
    assert {name: fast.headers[name] for name in same} == {name: routed.headers[name] for name in same}
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert "content-length" not in not_modified.headers
    assert not_modified.headers["etag"] == fast.headers["etag"]
    assert 'route="/weather",status="200"} 1.0' in routed_metrics


async def test_fast_path_304_repeats_etag_and_cache_control(proxy: AppFactory) -> None:
    async with proxy() as (_app, client):
        first = await client.get("/v1/weather", params={"lat": "48.85", "lon": "2.35"})
        again = await client.get(
            "/v1/weather",
            params={"lat": "48.85", "lon": "2.35"},
            headers={"If-None-Match": first.headers["etag"]},
        )
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"].startswith("public, max-age=")
    assert again.headers["x-content-type-options"] == "nosniff"


async def test_other_methods_and_routes_go_through_fastapi(proxy: AppFactory) -> None:
    async with proxy(http={"gzipMinimumSize": 10}) as (_app, client):
        head = await client.head("/v1/weather", params={"city": "Paris"})
        post = await client.post("/weather", params={"city": "Paris"})
        docs = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        plain = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"Accept-Encoding": "identity"}
        )
        metrics = (await client.get("/metrics")).text
    assert head.status_code == post.status_code == 405
    assert post.headers["content-type"] == "application/problem+json"
    assert docs.headers["content-encoding"] == "gzip"  # FastAPI's own gzip middleware still applies
    assert "/v1/weather" in docs.json()["paths"]
    assert "content-encoding" not in plain.headers  # the fast path gzips only for clients that accept it
    assert plain.json()["location"]["name"] == "Paris"
    assert 'weather_proxy_http_requests_total{method="POST",route="/weather",status="405"}' in metrics
    assert 'weather_proxy_http_requests_total{method="GET",route="/v1/weather",status="200"} 1.0' in metrics


async def test_fast_path_problems_carry_the_request_id(proxy: AppFactory) -> None:
    async with proxy(auth={"required": True}) as (_app, client):
        missing = await client.get("/weather", params={"city": "Paris"}, headers={"X-Request-ID": "rid-7"})
        metrics = (await client.get("/metrics")).text
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["instance"] == "rid-7"
    assert int(missing.headers["content-length"]) == len(missing.content)
    assert 'weather_proxy_http_requests_total{method="GET",route="/weather",status="401"} 1.0' in metrics
