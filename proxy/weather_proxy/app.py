"""The application factory: ``create_app(config) -> FastAPI``, and its lifespan.

Nothing here reads files or opens connections at import or in the factory
beyond the environment overrides; the lifespan builds the clients, loads the
keys file, starts the background tasks (Redis health, breaker fleet sync,
analytics flush, file reload, keys Secret watch, cache warming, the usage history's schema,
writer and maintenance, the upstream budget's refresh) and tears them down on shutdown
after uvicorn let in-flight requests finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import pathlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from weather_proxy import analytics, redis_link, reload, settings, version
from weather_proxy import config as config_mod
from weather_proxy import runtime as runtime_mod
from weather_proxy.auth import keys as keys_mod
from weather_proxy.auth import keysources, keywatch
from weather_proxy.cache import coalesce, store, swr, warmer
from weather_proxy.history import service as history_service
from weather_proxy.http import fastpath, middleware, openapi, problems
from weather_proxy.observability import errortracking, tracing
from weather_proxy.observability import logging as logs
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.ratelimit import limiter
from weather_proxy.routes import analytics as analytics_routes
from weather_proxy.routes import health, usage, weather
from weather_proxy.upstream import breaker as breaker_mod
from weather_proxy.upstream import budget as budget_mod
from weather_proxy.upstream import client as upstream

log = logging.getLogger(__name__)

DESCRIPTION = """\
A caching, rate-limited proxy in front of the [Open-Meteo](https://open-meteo.com/) APIs.

Authenticate with `X-API-Key`. Each operation names the scope its key needs (`weather:read`,
`usage:read`, `analytics:read`; a key without `scopes` has the first two). Errors are RFC 9457
`application/problem+json` documents whose `instance` is the request id (`X-Request-ID`).

Weather data by Open-Meteo.com, licensed CC BY 4.0 (non-commercial use of the free API).
"""


def create_app(
    config: config_mod.ProxyConfig | None = None,
    *,
    config_path: pathlib.Path | str | None = None,
    environ: Mapping[str, str] | None = None,
    fast_path: bool = True,
) -> FastAPI:
    """Build the proxy app for a config (built-in defaults when None).

    ``config_path`` is the file the config came from: it is watched and hot-reloaded.
    ``environ`` (default: ``os.environ``) supplies WEATHER_PROXY_REDIS_URL, REDIS_PASSWORD,
    WEATHER_PROXY_ANALYTICS_DATABASE_URL, ANALYTICS_DATABASE_PASSWORD and the SENTRY_* settings.
    ``fast_path=False`` leaves the weather routes to FastAPI's routing (for comparisons).
    """
    environ = os.environ if environ is None else environ
    config = settings.with_env(config or config_mod.ProxyConfig(), environ)
    metrics = metrics_mod.Metrics()
    rt = runtime_mod.Runtime(config=config, metrics=metrics, redis_password=settings.redis_password(environ))
    # Every replica of a fleet holds its Redis password: the secret that keys anonymous callers' ids.
    keys_mod.use_anonymous_secret(rt.redis_password)
    if config.analytics is not None:
        # No I/O here: the lifespan connects, in the background (the weather never waits for it).
        rt.history = history_service.UsageHistory(
            config.analytics, settings.analytics_password(environ), metrics
        )
    tracking = settings.error_tracking(environ, config)
    reporter = errortracking.ErrorReporter(tracking, version.VERSION) if tracking is not None else None
    path = pathlib.Path(config_path) if config_path is not None else None
    watched = config.auth.kubernetes
    api_server = keywatch.api_server_url(watched, environ) if watched is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = await _start(rt, path, environ, api_server)
        try:
            yield
        finally:
            await _stop(rt, tasks)
            if reporter is not None:
                await asyncio.to_thread(reporter.close)

    app = ProxyApp(
        title="Weather proxy",
        version=version.VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        # A slash redirect would echo the client's Host header into Location: no redirect, a 404.
        redirect_slashes=False,
        # Tracing is ours (tracing.instrument_app, a private provider); FastAPI's native
        # telemetry would look up the global OpenTelemetry providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = rt
    problems.install(app)
    app.include_router(weather.router)
    app.include_router(usage.router)
    app.include_router(analytics_routes.router)
    app.include_router(health.router)
    openapi.install(app)
    rt.tracer_provider = tracing.make_provider(config.observability.tracing)
    # add_middleware prepends: the last added is the outermost. The deadline is innermost; the
    # weather fast path, which keeps its own deadline, never passes through it.
    app.add_middleware(middleware.RequestDeadline, deadline=lambda: rt.config.http.request_timeout_seconds)
    app.add_middleware(GZipMiddleware, minimum_size=config.http.gzip_minimum_size)
    fast: dict[str, Any] = {}
    if fast_path:
        fast = {
            "handler": functools.partial(weather.answer, rt),
            "routes": {
                route.path: route
                for route in weather.router.routes
                if isinstance(route, APIRoute) and route.path in weather.PATHS
            },
            "gzip_minimum_size": config.http.gzip_minimum_size,
        }
    # The request's context and the checks every request passes, outermost last.
    outer: list[tuple[Callable[..., ASGIApp], dict[str, Any]]] = []
    if config.http.cors.allow_origins:
        outer.append((CORSMiddleware, CORS | {"allow_origins": config.http.cors.allow_origins}))
    if config.http.trusted_hosts != ["*"]:
        outer.append((TrustedHostMiddleware, {"allowed_hosts": config.http.trusted_hosts}))
    recorder = rt.history.writer if rt.history is not None else None
    outer.append(
        (
            middleware.RequestContextMiddleware,
            {"metrics": metrics, "recorder": recorder, "reporter": reporter},
        )
    )
    for cls, options in outer:
        app.add_middleware(cls, **options)
    # Server spans outermost, on either path: the request's log lines are written inside its span.
    tracing.instrument_app(app, rt.tracer_provider)
    if fast:
        # The same outer middlewares around the fast path, ahead of FastAPI's stack.
        direct = fastpath.WeatherFastPath(functools.partial(FastAPI.__call__, app), **fast)
        chain: ASGIApp = direct
        for cls, options in outer:
            chain = cls(chain, **options)
        if len(outer) == 1 and isinstance(chain, middleware.RequestContextMiddleware):
            # Only the request's context: it sends the fast path's answer itself.
            chain = functools.partial(chain.serve_raw, direct.respond)
        app.fast_path = tracing.traced(chain, rt.tracer_provider)
        app.fast_paths = frozenset(fast["routes"])
    return app


CORS: dict[str, Any] = {
    "allow_methods": ["GET"],
    "allow_headers": ["X-API-Key", "If-None-Match", "X-Request-ID"],
    "expose_headers": [
        "X-Cache",
        "ETag",
        "Age",
        "X-Request-ID",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "Retry-After",
    ],
}


class ProxyApp(FastAPI):
    """FastAPI, with the weather routes' GETs handed to the fast path before FastAPI's own layers.

    FastAPI wraps every request in its error, telemetry and body-limit middlewares before
    the app's own; on a cache hit they cost more than they do. The fast path's chain
    (``http.fastpath`` inside the same request-context, trusted-host and CORS middlewares)
    answers those requests itself, turning any error into a problem document.
    """

    fast_path: ASGIApp | None = None
    fast_paths: frozenset[str] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.fast_path is not None
            and scope["type"] == "http"
            and scope["path"] in self.fast_paths
            and scope["method"] == "GET"
        ):
            scope["app"] = self
            await self.fast_path(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


async def _start(
    rt: runtime_mod.Runtime,
    config_path: pathlib.Path | None,
    environ: Mapping[str, str],
    api_server: str | None = None,
) -> list[asyncio.Task[None]]:
    cfg = rt.config
    metrics = rt.metrics
    up = cfg.upstream
    rt.http = httpx.AsyncClient(
        timeout=up.timeout_seconds,
        limits=httpx.Limits(
            max_connections=up.pool.max_connections,
            max_keepalive_connections=up.pool.max_keepalive,
            keepalive_expiry=up.pool.keepalive_expiry_seconds,
        ),
        headers={"User-Agent": f"weather-proxy/{version.VERSION}"},
        follow_redirects=False,
    )
    tracing.instrument_http_client(rt.http, rt.tracer_provider)
    client = redis_link.make_client(cfg.redis.url, rt.redis_password) if cfg.redis else None
    tracing.instrument_redis(client, rt.tracer_provider)
    rt.link = link = redis_link.RedisLink(client, metrics)
    rt.breaker = breaker_mod.UpstreamBreaker(up.circuit_breaker, metrics)
    rt.breaker.redis = client
    rt.budget = budget_mod.UpstreamBudget(lambda: rt.config.upstream.budget, link, metrics)
    if rt.history is not None:
        rt.budget.listeners.append(rt.history.writer.count_upstream)
    openmeteo = upstream.OpenMeteoClient(
        rt.http, lambda: rt.config.upstream, rt.breaker, metrics, budget=rt.budget
    )
    tiers = store.TieredStore(lambda: rt.config.cache, link, metrics, cfg.cache.memory.max_entries)
    rt.service = swr.WeatherService(
        tiers,
        openmeteo,
        coalesce.Coalescer(metrics),
        coalesce.FleetLock(link, metrics),
        metrics,
        lambda: rt.config.cache,
        lambda: rt.config.upstream,
    )
    rt.limiter = limiter.Limiter(link)
    rt.analytics = analytics.UsageAnalytics(link)
    rt.warmer = warmer.Warmer(rt.service, lambda: rt.config.cache)
    rt.reloader = reload.Reloader()
    if config_path is not None:
        watched_config = reload.WatchedFile(
            "config",
            config_path,
            lambda p: settings.with_env(config_mod.load_config(p), environ),
            rt.apply_config,
            metrics,
        )
        watched_config.mark_loaded()
        rt.reloader.add(watched_config)
    files = [cfg.auth.keys_file, *cfg.auth.keys_files] if cfg.auth.keys_file else []
    # Where each file's keys go: straight into the ring, or into the merge of several sources.
    offers: list[Callable[[config_mod.KeysFile], None]] = [rt.apply_keys] if files else []
    if cfg.auth.kubernetes is not None and api_server is not None:
        # The mounted files and the watch feed one merge, which decides whose version is in force.
        secrets = cfg.auth.kubernetes.secret_names
        sources = rt.key_sources = keysources.KeySources(
            secrets,
            rt.apply_keys,
            lambda: rt.key_watch is not None and rt.key_watch.connected,
            apply_ring=rt.apply_ring,
        )
        rt.key_watch = keywatch.KeyWatch(cfg.auth.kubernetes, api_server, sources.offer_watch, metrics)
        offers = [functools.partial(sources.offer_file, secret=secrets[i]) for i in range(len(files))]
    elif len(files) > 1:
        # Several files without a watch (a sharded keys volume): merged in order.
        merge = keysources.KeySources(files, rt.apply_keys, lambda: False, apply_ring=rt.apply_ring)
        offers = [functools.partial(merge.offer_file, secret=path) for path in files]
    for index, (path, offer) in enumerate(zip(files, offers, strict=True)):
        label = "keys" if index == 0 else f"keys-{index}"
        watched_keys = reload.WatchedFile(label, pathlib.Path(path), config_mod.load_keys, offer, metrics)
        rt.reloader.add(watched_keys)
        await watched_keys.check()
    if await link.ping():
        await link.warm_up()  # the first cold burst then finds connections open
    if link.configured:
        await _ignore_redis_errors(rt.breaker.sync_once())

    tasks: list[asyncio.Task[None]] = []

    def spawn(name: str, coro: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.get_running_loop().create_task(coro, name=f"weather-proxy:{name}"))

    spawn("reload", rt.reloader.run())
    spawn("metrics", _flush_metrics(metrics))
    if rt.key_watch is not None:
        spawn("keys-watch", rt.key_watch.run())
    spawn("analytics", rt.analytics.run())
    if rt.history is not None:
        spawn("usage-history", rt.history.run())
    if link.configured:
        spawn("redis-health", link.run_health())
        spawn("breaker-sync", rt.breaker.run_sync())
        spawn("upstream-budget", rt.budget.run())
    if cfg.cache.warm_cities:
        spawn("warmer", rt.warmer.run())
    rt.started = True
    # What exists now lives as long as the process: keep it out of every future collection.
    # A full collection of it takes ~40 ms, which showed as the hit path's p99 latency.
    gc.freeze()
    log.info(
        "weather proxy started",
        extra={
            "environment": cfg.environment.value,
            "redis": link.configured,
            "authRequired": cfg.auth.required,
        },
    )
    return tasks


async def _flush_metrics(metrics: metrics_mod.Metrics) -> None:
    """Add the hot path's batched counts to the metrics every second (a scrape adds its own first)."""
    while True:
        await asyncio.sleep(1.0)
        metrics.flush()


async def _ignore_redis_errors(coro: Coroutine[Any, Any, None]) -> None:
    try:
        await coro
    except redis_link.ERRORS as exc:
        log.debug("redis not reachable at start: %s", exc)


async def _stop(rt: runtime_mod.Runtime, tasks: list[asyncio.Task[None]]) -> None:
    rt.shutting_down = True
    gc.unfreeze()
    if rt.history is not None:
        await rt.history.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if rt.service is not None:
        await rt.service.aclose()
        await rt.service.coalescer.aclose()
    if rt.breaker is not None:
        await rt.breaker.aclose()
    if rt.analytics is not None:
        with contextlib.suppress(*redis_link.ERRORS):
            await rt.analytics.flush()
    if rt.history is not None:
        await rt.history.aclose()
    if rt.http is not None:
        await rt.http.aclose()
    if rt.link is not None:
        await rt.link.aclose()
    tracing.shutdown(rt.tracer_provider)
    rt.metrics.close()
    logs.flush_audit()
    logs.request_id_var.set(None)
    log.info("weather proxy stopped")
