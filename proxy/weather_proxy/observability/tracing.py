"""OpenTelemetry tracing: server spans (FastAPI), client spans (httpx, redis).

Disabled tracing installs nothing, so it costs nothing on the hot path. When
enabled, the httpx instrumentation injects ``traceparent`` into upstream calls.
The tracer provider is private to the app (not the global one) so tests and
several apps in one process do not fight over it.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from weather_proxy import config as config_mod

log = logging.getLogger(__name__)


def make_provider(tracing: config_mod.Tracing, service_name: str = "weather-proxy") -> TracerProvider | None:
    """A tracer provider for the config, or None when tracing is disabled."""
    if not tracing.enabled:
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(tracing.sample_ratio)),
    )
    if tracing.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = tracing.otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def instrument_app(app: Any, provider: TracerProvider | None) -> None:
    """Server spans for every request, excluding health and metrics scrapes."""
    if provider is None:
        return
    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="health/.*,metrics")


def instrument_http_client(client: httpx.AsyncClient, provider: TracerProvider | None) -> None:
    """Client spans and ``traceparent`` propagation on upstream calls."""
    if provider is None:
        return
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def instrument_redis(client: Any, provider: TracerProvider | None) -> None:
    """Client spans on the app's Redis client only (not redis-py globally)."""
    if provider is None or client is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client, tracer_provider=provider)


def shutdown(provider: TracerProvider | None) -> None:
    if provider is not None:
        provider.shutdown()
