"""Traces without personal data, and the trace id in every JSON log line of a traced request."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import pathlib
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import KEY, build_config
from tests.unit.proxy.test_audit_log import json_logs
from weather_proxy import app as app_mod
from weather_proxy import config as config_mod
from weather_proxy.auth import keys
from weather_proxy.observability import logging as logs
from weather_proxy.observability import tracing

CLIENT_IP = "10.1.2.3"
USER_AGENT = "trace-test-agent/4.2 (unit)"
TRACED = {"tracing": {"enabled": True, "sampleRatio": 1.0}}
HEADERS = {"X-API-Key": KEY, "User-Agent": USER_AGENT}


@contextlib.asynccontextmanager
async def serving(
    cfg: config_mod.ProxyConfig,
) -> AsyncIterator[tuple[Any, httpx.AsyncClient, InMemorySpanExporter]]:
    """The app (lifespan running) called from CLIENT_IP, and the spans it finished (when traced)."""
    app = app_mod.create_app(cfg, environ={})
    exporter = InMemorySpanExporter()
    provider = app.state.runtime.tracer_provider
    if provider is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 40123))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            yield app, client, exporter


def recorded_text(span: ReadableSpan) -> list[str]:
    """The values a span would export: its name, its attributes' values, and its events'."""
    texts = [span.name, *map(str, (span.attributes or {}).values())]
    for event in span.events:
        texts += [event.name, *map(str, (event.attributes or {}).values())]
    return texts


def server_spans(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [span for span in spans if span.kind is trace.SpanKind.SERVER]


@pytest.mark.parametrize(
    ("params", "forbidden", "place"),
    [
        ({"city": "Paris"}, ["city=Paris", "name=Paris"], {"weather.place.city": "Paris"}),
        (
            {"lat": "48.8566", "lon": "2.3522"},
            ["48.8566", "2.3522", "48.86", "2.35"],
            {"weather.place.lat": 48.9, "weather.place.lon": 2.4},
        ),
    ],
    ids=["city", "coordinates"],
)
async def test_spans_hold_the_place_and_route_but_no_address_key_agent_or_query(
    openmeteo: om.OpenMeteoEmulator,
    keys_file: pathlib.Path,
    params: dict[str, str],
    forbidden: list[str],
    place: dict[str, object],
) -> None:
    cfg = build_config(openmeteo, observability=TRACED, auth={"keysFile": str(keys_file)})
    async with serving(cfg) as (_app, client, exporter):
        response = await client.get("/v1/weather", params=params, headers=HEADERS)
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    query = str(response.request.url.query, "ascii")
    personal = (CLIENT_IP, KEY, USER_AGENT, "40123", query, *forbidden)
    leaks = [
        (span.name, text)
        for span in spans
        for text in recorded_text(span)
        if any(p in text for p in personal)
    ]
    assert not leaks
    [server] = server_spans(spans)
    attributes = dict(server.attributes or {})
    assert server.name == "GET /v1/weather"
    assert attributes["http.route"] == "/v1/weather"
    assert {name: attributes.get(name) for name in place} == place
    upstream = [span for span in spans if span.instrumentation_scope.name.endswith(".httpx")]
    assert upstream, "no upstream call traced"
    urls = [
        span.attributes.get("http.url") or span.attributes.get("url.full")
        for span in upstream
        if span.attributes
    ]
    assert len(urls) == len(upstream)
    for url in urls:
        assert isinstance(url, str)
        assert "?" not in url
        assert url.startswith((openmeteo.geocoding_url, openmeteo.forecast_url))


async def test_a_path_of_no_route_is_not_recorded(openmeteo: om.OpenMeteoEmulator) -> None:
    cfg = build_config(openmeteo, observability=TRACED)
    async with serving(cfg) as (_app, client, exporter):
        response = await client.get("/v1/weather/48.8566,2.3522", headers={"User-Agent": USER_AGENT})
        health = await client.get("/health/live")
    assert (response.status_code, health.status_code) == (404, 200)
    [server] = server_spans(exporter.get_finished_spans())  # health probes get none
    assert server.name == "GET"
    assert "http.route" not in (server.attributes or {})
    assert not [text for text in recorded_text(server) if "48.8566" in text or CLIENT_IP in text]


def test_a_client_span_keeps_its_url_without_the_query() -> None:
    provider = tracing.make_provider(config_mod.Tracing(enabled=True, sample_ratio=1.0))
    assert provider is not None
    span = provider.get_tracer("test").start_span(
        "GET", attributes={"url.full": "https://api.example/v1/forecast?latitude=48.86&longitude=2.35"}
    )
    tracing.drop_query(span)
    span.end()
    provider.shutdown()
    assert span.attributes["url.full"] == "https://api.example/v1/forecast"


def audit_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    return [line for line in lines if line["logger"] == logs.AUDIT_LOGGER]


async def test_the_log_lines_of_a_traced_request_carry_its_trace_id(
    openmeteo: om.OpenMeteoEmulator, keys_file: pathlib.Path
) -> None:
    traced_cfg = build_config(openmeteo, observability=TRACED, auth={"keysFile": str(keys_file)})
    async with serving(traced_cfg) as (_app, client, exporter):
        with json_logs() as out:
            first = await client.get("/v1/weather", params={"city": "Paris"}, headers=HEADERS)
            logs.flush_audit()
            # Another handler on the root logger: the audit line is then an ordinary logging call.
            extra = logging.StreamHandler(io.StringIO())
            logging.getLogger().addHandler(extra)
            try:
                second = await client.get("/v1/weather", params={"city": "Paris"}, headers=HEADERS)
            finally:
                logging.getLogger().removeHandler(extra)
            traced_text = out.getvalue()
    assert (first.status_code, second.status_code) == (200, 200)
    servers = server_spans(exporter.get_finished_spans())
    assert len(servers) == 2
    lines = audit_lines(traced_text)
    assert len(lines) == 2
    for line, span in zip(lines, servers, strict=True):
        assert line["trace_id"] == format(span.context.trace_id, "032x")
        assert re.fullmatch("[0-9a-f]{16}", line["span_id"])
        assert line["span_id"] == format(span.context.span_id, "016x")
        assert list(line)[:6] == ["time", "level", "logger", "message", "requestId", "trace_id"]

    untraced_cfg = build_config(openmeteo, auth={"keysFile": str(keys_file)})
    async with serving(untraced_cfg) as (_app, client, _exporter):
        with json_logs() as out:
            response = await client.get("/v1/weather", params={"city": "Paris"}, headers=HEADERS)
            logs.flush_audit()
            untraced_text = out.getvalue()
    assert response.status_code == 200
    [line] = audit_lines(untraced_text)
    assert "trace_id" not in line
    assert "span_id" not in line


def test_json_lines_carry_the_ids_of_a_sampled_span_only() -> None:
    provider = tracing.make_provider(config_mod.Tracing(enabled=True, sample_ratio=1.0))
    assert provider is not None
    formatter = logs.JsonFormatter()

    def line() -> dict[str, Any]:
        record = logging.LogRecord("weather_proxy.test", logging.INFO, __file__, 1, "hello", (), None)
        parsed: dict[str, Any] = json.loads(formatter.format(record))
        return parsed

    with provider.get_tracer("test").start_as_current_span("work") as span:
        inside = line()
    unsampled = trace.NonRecordingSpan(
        trace.SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=trace.TraceFlags(0))
    )
    with trace.use_span(unsampled):
        skipped = line()
    provider.shutdown()
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span_id"] == format(span.get_span_context().span_id, "016x")
    assert "trace_id" not in line()
    assert "trace_id" not in skipped


def test_an_anonymous_callers_limiter_id_is_a_hash_of_its_address() -> None:
    ring = keys.KeyRing(config_mod.KeysFile())
    limits = config_mod.RateLimit()

    def limiter_id(address: str) -> str:
        return ring.authenticate(None, required=False, limits=limits, client_address=address).limiter_id

    unkeyed = limiter_id(CLIENT_IP)
    assert re.fullmatch("anon:[0-9a-f]{32}", unkeyed)
    assert CLIENT_IP not in unkeyed
    assert limiter_id(CLIENT_IP) == unkeyed
    assert limiter_id("10.1.2.4") != unkeyed
    try:
        keys.use_anonymous_secret("the fleet's secret")
        keyed = limiter_id(CLIENT_IP)
        keys.use_anonymous_secret("the fleet's secret")  # another replica of the same fleet
        assert limiter_id(CLIENT_IP) == keyed
        keys.use_anonymous_secret("another fleet's secret")
        assert limiter_id(CLIENT_IP) != keyed
    finally:
        keys.use_anonymous_secret(None)
    assert keyed != unkeyed
    assert limiter_id(CLIENT_IP) == unkeyed


async def test_an_anonymous_callers_redis_bucket_and_spans_do_not_hold_its_address(
    openmeteo: om.OpenMeteoEmulator, redis_url: str
) -> None:
    cfg = build_config(openmeteo, observability=TRACED, redis={"url": redis_url})
    async with serving(cfg) as (_app, client, exporter):
        response = await client.get(
            "/v1/weather", params={"city": "Paris"}, headers={"User-Agent": USER_AGENT}
        )
    assert response.status_code == 200
    redis = aioredis.Redis.from_url(redis_url)
    try:
        names = [name.decode() for name in await redis.keys("*")]
    finally:
        await redis.aclose()
    assert not [name for name in names if CLIENT_IP in name]
    buckets = [name for name in names if name.startswith("weather-proxy:bucket:")]
    assert len(buckets) == 1
    assert re.fullmatch(r"weather-proxy:bucket:\{anon:[0-9a-f]{32}\}", buckets[0])
    spans = exporter.get_finished_spans()
    assert any(span.instrumentation_scope.name.endswith(".redis") for span in spans)
    assert not [
        text for span in spans for text in recorded_text(span) if CLIENT_IP in text or USER_AGENT in text
    ]


@pytest.mark.parametrize(
    ("typed", "status", "city", "country"),
    [
        ("  pARis ", 200, "Paris", "FR"),  # found: the geocoder's name and country
        ("Rue de Rivoli 12 Xq", 404, None, None),  # not found: no place at all
    ],
    ids=["found", "not-found"],
)
async def test_the_audit_line_and_spans_name_the_place_found_never_the_city_as_typed(
    openmeteo: om.OpenMeteoEmulator,
    keys_file: pathlib.Path,
    typed: str,
    status: int,
    city: str | None,
    country: str | None,
) -> None:
    cfg = build_config(openmeteo, observability=TRACED, auth={"keysFile": str(keys_file)})
    async with serving(cfg) as (_app, client, exporter):
        with json_logs() as out:
            response = await client.get("/v1/weather", params={"city": typed}, headers=HEADERS)
            logs.flush_audit()
            text = out.getvalue()
    assert response.status_code == status
    [line] = audit_lines(text)
    assert line["city"] == city
    [server] = server_spans(exporter.get_finished_spans())
    attributes = dict(server.attributes or {})
    assert attributes.get(tracing.PLACE_CITY) == city
    assert attributes.get(tracing.PLACE_COUNTRY) == country
    as_typed = typed.strip()
    assert as_typed not in text
    assert not [t for span in exporter.get_finished_spans() for t in recorded_text(span) if as_typed in t]
