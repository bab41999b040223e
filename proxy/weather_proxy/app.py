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
import faulthandler
import functools
import gc
import logging
import os
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from weather_proxy import analytics, redis_link, reload, version
from weather_proxy import config as config_mod
from weather_proxy import runtime as runtime_mod
from weather_proxy import settings as settings_mod
from weather_proxy.auth import keys as keys_mod
from weather_proxy.auth import keysources, keywatch
from weather_proxy.cache import coalesce, store, swr, warmer
from weather_proxy.history import service as history_service
from weather_proxy.http import middleware, openapi, problems
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

# Each shutdown step (stopping the background tasks, closing a client) gets this long; then
# the shutdown logs where it waits and goes on. Kubernetes' grace period is 30 s by default.
STOP_STEP_SECONDS = 5.0
# Past this, every thread's stack goes to stderr (a loop blocked in a thread, not awaiting).
STOP_STACKS_AFTER_SECONDS = 20.0

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
    settings: settings_mod.ProxySettings | None = None,
    environ: Mapping[str, str] | None = None,
    fast_path: bool = True,
) -> FastAPI:
    """Build the proxy app for a config (built-in defaults when None).

    ``config_path`` is the file the config came from: it is watched and hot-reloaded.
    ``settings`` are the environment's (``settings.ProxySettings``), read from ``environ``
    (default: ``os.environ``) when not given. ``fast_path=False`` leaves the weather routes to
    FastAPI's routing (for comparisons).
    """
    environ = os.environ if environ is None else environ
    env = settings or settings_mod.ProxySettings.from_env(environ)
    config = env.apply(config or config_mod.ProxyConfig())
    metrics = metrics_mod.Metrics(env.metrics_dir)
    # No I/O here: the lifespan connects the usage history, in the background (the weather never waits).
    history = (
        history_service.UsageHistory(config.analytics, env.secret("analytics_database_password"), metrics)
        if config.analytics is not None
        else None
    )
    rt = runtime_mod.Runtime(
        config=config,
        settings=env,
        metrics=metrics,
        tracer_provider=tracing.make_provider(config.observability.tracing),
        history=history,
    )
    # Every replica of a fleet holds its Redis password: the secret that keys anonymous callers' ids.
    keys_mod.use_anonymous_secret(env.secret("redis_password"))
    tracking = env.error_tracking(config)
    reporter = errortracking.ErrorReporter(tracking, version.VERSION) if tracking is not None else None
    path = pathlib.Path(config_path) if config_path is not None else None
    watched = config.auth.kubernetes
    api_server = keywatch.api_server_url(watched, environ) if watched is not None else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = await _start(rt, path, api_server)
        try:
            yield
        finally:
            await _stop(rt, tasks)
            if reporter is not None:
                await asyncio.to_thread(reporter.close)

    app = FastAPI(
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
    # The one chain every request passes, innermost first (add_middleware prepends). The deadline
    # and gzip are FastAPI's routes'; the weather hits' middleware answers GETs of the weather
    # paths itself, with its own deadline and gzip. Server spans are outermost: a request's log
    # lines are written inside its span.
    app.add_middleware(middleware.RequestDeadline, deadline=lambda: rt.config.http.request_timeout_seconds)
    app.add_middleware(GZipMiddleware, minimum_size=config.http.gzip_minimum_size)
    if fast_path:
        app.add_middleware(weather.WeatherHits, runtime=rt, gzip_minimum_size=config.http.gzip_minimum_size)
    if config.http.cors.allow_origins:
        app.add_middleware(CORSMiddleware, **CORS, allow_origins=config.http.cors.allow_origins)
    if config.http.trusted_hosts != ["*"]:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=config.http.trusted_hosts)
    app.add_middleware(
        middleware.RequestContextMiddleware,
        metrics=metrics,
        recorder=history.writer if history is not None else None,
        reporter=reporter,
    )
    tracing.instrument_app(app, rt.tracer_provider)
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


def _parts(rt: runtime_mod.Runtime, api_server: str | None) -> runtime_mod.Parts:
    """The clients and services of ``rt``'s config, made whole; nothing connects yet."""
    cfg = rt.config
    metrics = rt.metrics
    up = cfg.upstream
    http = httpx.AsyncClient(
        timeout=up.timeout_seconds,
        limits=httpx.Limits(
            max_connections=up.pool.max_connections,
            max_keepalive_connections=up.pool.max_keepalive,
            keepalive_expiry=up.pool.keepalive_expiry_seconds,
        ),
        headers={"User-Agent": f"weather-proxy/{version.VERSION}"},
        follow_redirects=False,
    )
    tracing.instrument_http_client(http, rt.tracer_provider)
    client = (
        redis_link.make_client(cfg.redis.url, rt.settings.secret("redis_password"), tls=cfg.redis.tls)
        if cfg.redis
        else None
    )
    tracing.instrument_redis(client, rt.tracer_provider)
    link = redis_link.RedisLink(client, metrics)
    breaker = breaker_mod.UpstreamBreaker(up.circuit_breaker, metrics, rt.settings.breaker_scope)
    breaker.redis = client
    budget = budget_mod.UpstreamBudget(lambda: rt.config.upstream.budget, link, metrics)
    if rt.history is not None:
        budget.listeners.append(rt.history.writer.count_upstream)
    openmeteo = upstream.OpenMeteoClient(http, lambda: rt.config.upstream, breaker, metrics, budget=budget)
    tiers = store.TieredStore(lambda: rt.config.cache, link, metrics, cfg.cache.memory.max_entries)
    service = swr.WeatherService(
        tiers,
        openmeteo,
        coalesce.Coalescer(metrics),
        coalesce.FleetLock(link, metrics),
        metrics,
        lambda: rt.config.cache,
        lambda: rt.config.upstream,
    )
    key_sources = key_watch = None
    if cfg.auth.kubernetes is not None and api_server is not None:
        # The mounted files and the watch feed one merge, which decides whose version is in force.
        watch_connected = lambda: key_watch is not None and key_watch.connected  # noqa: E731
        key_sources = keysources.KeySources(
            cfg.auth.kubernetes.secret_names, rt.apply_keys, watch_connected, apply_ring=rt.apply_ring
        )
        key_watch = keywatch.KeyWatch(cfg.auth.kubernetes, api_server, key_sources.offer_watch, metrics)
    return runtime_mod.Parts(
        http=http,
        link=link,
        breaker=breaker,
        budget=budget,
        service=service,
        limiter=limiter.Limiter(link),
        analytics=analytics.UsageAnalytics(link),
        warmer=warmer.Warmer(service, lambda: rt.config.cache),
        reloader=reload.Reloader(),
        key_sources=key_sources,
        key_watch=key_watch,
    )


async def _start(
    rt: runtime_mod.Runtime, config_path: pathlib.Path | None, api_server: str | None
) -> list[asyncio.Task[None]]:
    cfg = rt.config
    metrics = rt.metrics
    rt.parts = parts = _parts(rt, api_server)
    if config_path is not None:
        watched_config = reload.WatchedFile(
            "config",
            config_path,
            lambda p: rt.settings.apply(config_mod.load_config(p)),
            rt.apply_config,
            metrics,
        )
        watched_config.mark_loaded()
        parts.reloader.add(watched_config)
    files = [cfg.auth.keys_file, *cfg.auth.keys_files] if cfg.auth.keys_file else []
    # Where each file's keys go: straight into the ring, or into the merge of several sources.
    offers: list[Callable[[config_mod.KeysFile], None]] = [rt.apply_keys] if files else []
    if parts.key_sources is not None:
        secrets = parts.key_sources.secret_names
        offers = [
            functools.partial(parts.key_sources.offer_file, secret=secrets[i]) for i in range(len(files))
        ]
    elif len(files) > 1:
        # Several files without a watch (a sharded keys volume): merged in order.
        merge = keysources.KeySources(files, rt.apply_keys, lambda: False, apply_ring=rt.apply_ring)
        offers = [functools.partial(merge.offer_file, secret=path) for path in files]
    for index, (path, offer) in enumerate(zip(files, offers, strict=True)):
        label = "keys" if index == 0 else f"keys-{index}"
        watched_keys = reload.WatchedFile(label, pathlib.Path(path), config_mod.load_keys, offer, metrics)
        parts.reloader.add(watched_keys)
        await watched_keys.check()
    if cfg.listen.tls is not None:
        await _watch_tls(rt, cfg.listen.tls)
    link = parts.link
    if await link.ping():
        await link.warm_up()  # the first cold burst then finds connections open
    if link.configured:
        await _ignore_redis_errors(parts.breaker.sync_once())

    tasks: list[asyncio.Task[None]] = []

    def spawn(name: str, coro: Coroutine[Any, Any, None]) -> None:
        tasks.append(asyncio.get_running_loop().create_task(coro, name=f"weather-proxy:{name}"))

    spawn("reload", parts.reloader.run())
    spawn("metrics", _flush_metrics(metrics))
    if parts.key_watch is not None:
        spawn("keys-watch", parts.key_watch.run())
    spawn("analytics", parts.analytics.run())
    if rt.history is not None:
        spawn("usage-history", rt.history.run())
    if link.configured:
        spawn("redis-health", link.run_health())
        spawn("breaker-sync", parts.breaker.run_sync())
        spawn("upstream-budget", parts.budget.run())
    if cfg.cache.warm_cities:
        spawn("warmer", parts.warmer.run())
    rt.started = True
    # What exists now lives as long as the process: keep it out of every future collection.
    # A full collection of it is long enough to show in the hit path's p99 latency.
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


async def _watch_tls(rt: runtime_mod.Runtime, tls_cfg: config_mod.ServingTls) -> None:
    """The served certificate's expiry gauge and, under uvicorn, its reload when the files change.

    Under uvicorn the server's SSL context is ours (``http.tls.SERVING``): a new pair is loaded
    into it. Under granian the worker serves what it read at start, and so does the gauge.
    """
    from weather_proxy.http import tls as tls_mod

    serving = tls_mod.SERVING
    leaf = serving.leaf or tls_mod.check(tls_cfg)
    rt.metrics.set_tls_certificate_expiry(leaf.not_after.timestamp())
    if not serving.reloadable:
        serving.leaf = leaf
        return

    watches: list[reload.WatchedFile[tls_mod.Leaf]] = []

    def install(new: tls_mod.Leaf) -> None:
        serving.install(new)
        rt.metrics.set_tls_certificate_expiry(new.not_after.timestamp())
        for watched in watches:  # the pair is whole again: an earlier failure of either is over
            watched.state.ok, watched.state.error = True, None

    # Either file changing reloads the pair: a volume swaps both at once, a person may write one
    # then the other (the first reload then fails on the mismatch, the second succeeds).
    for label, path in zip(tls_mod.WATCH_LABELS, (tls_cfg.cert_file, tls_cfg.key_file), strict=True):
        watched = reload.WatchedFile(
            label, pathlib.Path(path), lambda _p: tls_mod.check(tls_cfg), install, rt.metrics
        )
        watches.append(watched)
        rt.parts.reloader.add(watched)
        # Read now, not marked as loaded: files swapped since the server loaded its context are
        # installed here, not missed.
        await watched.check()


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
    """Stop the background tasks, then close the clients, each step within ``STOP_STEP_SECONDS``.

    A step that overruns is logged with where its coroutines wait and the shutdown goes on: a
    process that cannot stop is worse than one connection closed without a goodbye. A thread
    that blocks the loop itself gets every thread's stack on stderr (``faulthandler``).
    """
    rt.shutting_down = True
    gc.unfreeze()
    faulthandler.dump_traceback_later(STOP_STACKS_AFTER_SECONDS, exit=False)
    parts = rt.parts
    if rt.history is not None:
        await _within("usage history", rt.history.stop())
    for task in tasks:
        task.cancel()
    await _within("background tasks", asyncio.gather(*tasks, return_exceptions=True), tasks)
    await _within("cache refreshes", parts.service.aclose())
    await _within("coalesced calls", parts.service.coalescer.aclose())
    await _within("breaker", parts.breaker.aclose())
    with contextlib.suppress(*redis_link.ERRORS):
        await _within("analytics flush", parts.analytics.flush())
    if rt.history is not None:
        await _within("usage history", rt.history.aclose())
    await _within("upstream client", parts.http.aclose())
    await _within("redis client", parts.link.aclose())
    tracing.shutdown(rt.tracer_provider)
    rt.metrics.close()
    faulthandler.cancel_dump_traceback_later()
    logs.flush_audit()
    logs.request_id_var.set(None)
    log.info("weather proxy stopped")


async def _within(step: str, awaitable: Awaitable[Any], tasks: Sequence[asyncio.Task[Any]] = ()) -> None:
    """Await one shutdown step for at most ``STOP_STEP_SECONDS``; an overrun is logged, not raised.

    Not ``asyncio.timeout``: cancelling a step waits for what it awaits, and a task that swallows
    its cancellation would hold the shutdown for ever. An overrun step is cancelled and left.
    """
    job = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait([job], timeout=STOP_STEP_SECONDS)
    if done:
        job.result()
        return
    job.cancel()
    pending = [task for task in tasks if not task.done()]
    if not pending and isinstance(job, asyncio.Task):
        pending = [job]
    log.warning(
        "shutdown: %s did not finish within %.0f s; going on",
        step,
        STOP_STEP_SECONDS,
        extra={"waiting": [_where(task) for task in pending]},
    )


def _where(task: asyncio.Task[Any]) -> str:
    """The innermost frame a task waits in (file:line function)."""
    frames = task.get_stack()
    if not frames:
        return task.get_name()
    frame = frames[-1]
    return f"{task.get_name()}: {frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}"
