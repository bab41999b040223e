"""OpenTelemetry tracing: server spans, client spans (httpx, redis), without personal data.

Disabled tracing installs nothing, so it costs nothing on the hot path. When
enabled, the httpx instrumentation injects ``traceparent`` into upstream calls,
and JSON log lines carry the current span's ids (``logging.include_trace_ids``).
The tracer provider is private to the app (not the global one) so tests and
several apps in one process do not fight over it.

Spans never carry the client's address or port, its user agent, its API key or the
query as typed (exact coordinates, the city as typed). The ASGI instrumentation
records whatever the request holds when its span starts, and a span's attributes
cannot be removed afterwards, only overwritten: so ``ServerSpans`` gives it a copy
of the request with none of that (no client, no path or query, only the headers that
carry the caller's trace context, and the Host), then adds the route's template and
the place as the usage history keeps it (``place.of``): the city the geocoder found, by its
name and country, or coordinates to 0.1 degree; never the city as typed. An upstream call's
span loses its URL's query (coordinates or the city's name) as soon as it starts. A Redis
call's span records the command and a ``?`` for each argument: the redis instrumentation
always does, and has no setting to record more.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.util.http import parse_excluded_urls, sanitize_method
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from weather_proxy import config as config_mod
from weather_proxy.observability import logging as logs
from weather_proxy.observability import place as place_mod

log = logging.getLogger(__name__)

# Health probes and metrics scrapes get no span.
EXCLUDED_URLS = "health/.*,metrics"
HTTP_ROUTE = "http.route"
PLACE_CITY = "weather.place.city"
PLACE_COUNTRY = "weather.place.country"
PLACE_LAT = "weather.place.lat"
PLACE_LON = "weather.place.lon"
# The attributes of a client span that hold a URL, under the old and the stable HTTP conventions.
URL_ATTRIBUTES = ("http.url", "url.full")
# Where the copy of the request given to the instrumentation keeps the request itself.
_REQUEST = "weather_proxy.request"


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
    logs.include_trace_ids()
    return provider


class ServerSpans:
    """A server span for every request but health probes and metrics scrapes, without personal data.

    The instrumentation's middleware sees a copy of the request that holds its method, scheme,
    server, the Host header and the headers of the trace context, not its path (whatever a
    client typed there); the app is called with the request itself. When the answer starts,
    the span is named after the route routing found (``http.route``, as in the metrics) and
    given the place the request asked for.
    """

    def __init__(self, app: ASGIApp, tracer_provider: TracerProvider) -> None:
        self.app = app
        self.excluded = parse_excluded_urls(EXCLUDED_URLS)
        fields = propagate.get_global_textmap().fields
        self.kept_headers = frozenset(
            {b"host", b"content-length", *(name.lower().encode() for name in fields)}
        )
        # No internal span per ASGI send/receive: they say nothing the server span does not, and
        # made tracing cost about 4x the untraced hit path's CPU (bench/README.md, figure 1).
        self.instrumented = OpenTelemetryMiddleware(
            self._serve, tracer_provider=tracer_provider, exclude_spans=["receive", "send"]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.excluded.url_disabled(scope["path"]):
            await self.app(scope, receive, send)
            return
        kept = self.kept_headers
        seen: Scope = {
            "type": "http",
            "asgi": scope.get("asgi", {}),
            "http_version": scope.get("http_version", "1.1"),
            "method": scope["method"],
            "scheme": scope.get("scheme", "http"),
            "server": scope.get("server"),
            "root_path": "",
            "path": "",
            "query_string": b"",
            "headers": [(name, value) for name, value in scope["headers"] if name in kept],
            _REQUEST: scope,
        }
        await self.instrumented(seen, receive, send)

    async def _serve(self, seen: Scope, receive: Receive, send: Send) -> None:
        scope: Scope = seen[_REQUEST]
        span = trace.get_current_span()  # the server span: the instrumentation made it current
        if not span.is_recording():
            await self.app(scope, receive, send)
            return

        async def send_annotated(message: Message) -> None:
            if message["type"] == "http.response.start":
                annotate(span, scope)
            await send(message)

        await self.app(scope, receive, send_annotated)


def annotate(span: trace.Span, scope: Scope) -> None:
    """The route's template and the place asked for (as its history row keeps it) on a server span."""
    route = getattr(scope.get("route"), "path", None)
    if isinstance(route, str):
        method = sanitize_method(scope["method"])
        span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route}")
        span.set_attribute(HTTP_ROUTE, route)
    place = place_mod.of(scope.get("state"))
    if place is None:
        return
    if place.name is not None:
        span.set_attribute(PLACE_CITY, place.name)
        if place.country is not None:
            span.set_attribute(PLACE_COUNTRY, place.country)
    if place.lat is not None and place.lon is not None:
        span.set_attribute(PLACE_LAT, place.lat)
        span.set_attribute(PLACE_LON, place.lon)


def instrument_app(app: Any, provider: TracerProvider | None) -> None:
    """Server spans around FastAPI's stack: call it after adding the app's other middlewares."""
    if provider is None:
        return
    app.add_middleware(ServerSpans, tracer_provider=provider)


def traced(chain: ASGIApp, provider: TracerProvider | None) -> ASGIApp:
    """``chain`` (the weather fast path's, ahead of FastAPI's stack) inside server spans."""
    if provider is None:
        return chain
    return ServerSpans(chain, provider)


def drop_query(span: trace.Span) -> None:
    """Overwrite the URL attributes of a client span with the URL without its query."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and "?" in value:
            span.set_attribute(name, value.partition("?")[0])


async def _upstream_request_hook(span: trace.Span, request: Any) -> None:
    drop_query(span)


def instrument_http_client(client: httpx.AsyncClient, provider: TracerProvider | None) -> None:
    """Client spans (URL without its query) and ``traceparent`` propagation on upstream calls."""
    if provider is None:
        return
    HTTPXClientInstrumentor.instrument_client(
        client, tracer_provider=provider, request_hook=_upstream_request_hook
    )


def instrument_redis(client: Any, provider: TracerProvider | None) -> None:
    """Client spans on the app's Redis client only (not redis-py globally)."""
    if provider is None or client is None:
        return
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    RedisInstrumentor.instrument_client(client, tracer_provider=provider)


def shutdown(provider: TracerProvider | None) -> None:
    if provider is not None:
        provider.shutdown()
