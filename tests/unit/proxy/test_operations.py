"""Metrics names and labels, readiness document, logging, tracing, warming, the command line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import pathlib
import platform

import pytest

from devcluster import openmeteo as om
from tests.unit.proxy.conftest import AppFactory, build_config, running
from weather_proxy import __main__ as cli
from weather_proxy import config as config_mod
from weather_proxy import settings, version
from weather_proxy.cache import warmer
from weather_proxy.observability import logging as logs
from weather_proxy.observability import tracing
from weather_proxy.upstream import wmo


async def test_metrics_use_route_templates_and_agreed_names(proxy: AppFactory) -> None:
    async with proxy() as (_app, client):
        await client.get("/v1/weather", params={"city": "Paris"})
        await client.get("/v1/weather", params={"city": "Paris"})
        await client.get("/random/path/123")
        text = (await client.get("/metrics")).text
    for name in (
        "weather_proxy_http_requests_total",
        "weather_proxy_http_request_duration_seconds_bucket",
        "weather_proxy_cache_requests_total",
        "weather_proxy_upstream_requests_total",
        "weather_proxy_upstream_request_duration_seconds_bucket",
        "weather_proxy_upstream_breaker_state",
        "weather_proxy_rate_limited_total",
        "weather_proxy_redis_up",
        "weather_proxy_coalesced_requests_total",
    ):
        assert name in text
    assert 'weather_proxy_http_requests_total{method="GET",route="/v1/weather",status="200"} 2.0' in text
    assert 'route="other"' in text
    assert "/random/path/123" not in text
    assert 'weather_proxy_cache_requests_total{result="hit",tier="l1"} 1.0' in text
    assert 'weather_proxy_upstream_requests_total{endpoint="geocoding",outcome="success"} 1.0' in text
    build = f'python_version="{platform.python_version()}",version="{version.VERSION}"'
    assert f"weather_proxy_build_info{{{build}}} 1.0" in text


async def test_readiness_document_shape(proxy: AppFactory) -> None:
    async with proxy() as (app, client):
        doc = (await client.get("/health/ready")).json()
        app.state.runtime.shutting_down = True
        stopping = await client.get("/health/ready")
    assert doc["status"] == "ok"
    assert set(doc["checks"]) == {"config", "keys", "redis", "upstream"}
    assert doc["checks"]["upstream"]["breaker"] == "closed"
    # The default budget is Open-Meteo's free tier.
    assert doc["checks"]["upstream"]["budget"]["minute"] == {"used": 0, "limit": 600}
    assert stopping.status_code == 503


async def test_warm_cities_are_fetched_at_start(openmeteo: om.OpenMeteoEmulator) -> None:
    cfg = build_config(openmeteo, cache={"warmCities": ["Paris", "Nowhereville Xq"]})
    async with running(cfg) as (app, client):
        rt = app.state.runtime
        for _ in range(300):  # the warmer's first pass runs as a task at start
            if openmeteo.calls("forecast") == 1 and rt.parts.warmer.last_run_failures == 1:
                break
            await asyncio.sleep(0.01)
        assert await rt.parts.warmer.warm_once() == 0  # already warm: nothing due
        response = await client.get("/v1/weather", params={"city": "Paris"})
    assert response.headers["x-cache"] == "HIT"
    assert rt.parts.warmer.last_run_failures == 1
    assert warmer.schedule(300) == (30.0, 60.0)
    assert warmer.schedule(5) == (1.0, 2.0)


def test_json_log_lines_carry_request_id_and_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("weather_proxy.test_json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    token = logs.request_id_var.set("rid-1")
    try:
        logger.info("hello %s", "world", extra={"keyId": "ns/a", "color_message": "\x1b[36mhello\x1b[0m"})
        try:
            raise ValueError("x")
        except ValueError:
            logger.exception("failed")
    finally:
        logs.request_id_var.reset(token)
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "hello world"
    assert first["requestId"] == "rid-1"
    assert first["keyId"] == "ns/a"
    assert first["level"] == "info"
    assert "color_message" not in first, "uvicorn's terminal-coloured copy of the message is dropped"
    assert "ValueError" in second["exception"]


def test_configure_installs_one_handler_and_sets_level() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        logs.configure("warning", "text")
        logs.configure("debug", "json")
        ours = [h for h in root.handlers if getattr(h, "_weather_proxy", False)]
        assert len(ours) == 1
        assert logging.getLogger("weather_proxy").level == logging.DEBUG
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
        assert "[-] m" in logs.TextFormatter().format(record)
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
        root.setLevel(level)
        logging.getLogger("weather_proxy").setLevel(logging.NOTSET)


async def test_tracing_enabled_builds_a_provider(openmeteo: om.OpenMeteoEmulator) -> None:
    assert tracing.make_provider(config_mod.Tracing()) is None
    cfg = build_config(
        openmeteo,
        observability={
            "tracing": {"enabled": True, "sampleRatio": 1.0, "otlpEndpoint": "http://127.0.0.1:1"}
        },
    )
    async with running(cfg) as (app, client):
        response = await client.get("/v1/weather", params={"city": "Paris"})
        assert app.state.runtime.tracer_provider is not None
    assert response.status_code == 200


async def test_traces_continue_the_caller_and_reach_the_upstream(openmeteo: om.OpenMeteoEmulator) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    cfg = build_config(openmeteo, observability={"tracing": {"enabled": True, "sampleRatio": 1.0}})
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    exporter = InMemorySpanExporter()
    async with running(cfg) as (app, client):
        app.state.runtime.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        response = await client.get(
            "/v1/weather",
            params={"city": "Paris"},
            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    assert spans, "no span recorded"
    assert {format(span.context.trace_id, "032x") for span in spans} == {trace_id}
    assert any(span.name.startswith("GET /v1/weather") for span in spans)
    upstream = openmeteo.request_headers("search") + openmeteo.request_headers("forecast")
    assert len(upstream) == 2
    assert all(h.get("traceparent", "").startswith(f"00-{trace_id}-") for h in upstream)


def test_wmo_table() -> None:
    assert wmo.describe(3) == "Overcast"
    assert wmo.describe(99) == "Thunderstorm with heavy hail"
    assert wmo.describe(None) == wmo.describe(12345) == "Unknown"


def test_cli_arguments_and_bad_config(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = cli.parse_args(
        ["--config", "c.yaml", "--port", "9000", "--log-format", "text"], settings.ProxySettings.from_env({})
    )
    assert (args.config, args.port, args.log_format) == ("c.yaml", 9000, "text")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cache: {ttlSeconds: 0}\nnope: 1\n")
    assert cli.main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "cache.ttlSeconds" in err
    assert "nope" in err


def test_cli_reads_config_path_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEATHER_PROXY_CONFIG", "/etc/x.yaml")
    assert cli.parse_args([], settings.ProxySettings.from_env()).config == "/etc/x.yaml"
