"""Serve the app: uvicorn (or granian), one process or ``workers`` processes behind one port.

With one worker the app is built here and served in this process, as before. With
several, uvicorn's supervisor binds the port once and starts each worker as a fresh
process (spawned, not forked) that builds its own app from the same config file
(``worker_app``): each has its own L1 cache and background tasks and shares the
fleet's Redis (limits, breaker, coalescing locks, L2) like any other replica. The
supervisor restarts a worker that dies and stops them all on SIGTERM. With
``server: granian`` granian's supervisor does the same, always with spawned workers.

Metrics of several workers go through prometheus-client's multiprocess mode: each
worker writes its samples to files in one directory, and whichever worker answers a
scrape of ``/metrics`` reads them all, so the pod's counters add up whichever process
Prometheus reaches (see ``observability.metrics``).

Both servers hold request heads to the same bounds (``http.maxHeaderBytes``,
``http.headerTimeoutSeconds``): uvicorn through ``http.protocol``, granian through its
HTTP/1 settings. Both believe X-Forwarded-For/-Proto only from ``http.trustedProxies``,
through one middleware around the app (``serving_app``), none when the list is empty.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
from typing import Any

from weather_proxy import config as config_mod
from weather_proxy import settings

# The uvicorn settings of every server process (bench/serve.py serves its baselines with them).
# ``http``: httptools with a bounded, timed request head (http/protocol.py), by name so that
# importing this module does not import uvicorn. Forwarded headers are ``serving_app``'s: uvicorn's
# own handling would believe them from 127.0.0.1 whatever http.trustedProxies says.
UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "uvloop",
    "http": "weather_proxy.http.protocol:BoundedHttpToolsProtocol",
    "lifespan": "on",
    "log_config": None,
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
}


def graceful_seconds(cfg: config_mod.ProxyConfig) -> int:
    return max(5, int(cfg.http.request_timeout_seconds))


def run(
    cfg: config_mod.ProxyConfig,
    env: settings.ProxySettings,
    *,
    config_path: str | None,
    host: str,
    port: int,
    workers: int,
    log_format: str,
) -> None:
    """Serve until SIGTERM; ``workers`` > 1 runs that many processes behind the one port."""
    if cfg.listen.tls is not None:
        from weather_proxy.http import tls

        tls.check(cfg.listen.tls)  # a missing, unreadable or mismatched file stops the start here
    if cfg.server is config_mod.Server.GRANIAN:
        # Granian's Rust HTTP server in front of the same app, each worker a process of its own.
        # Before anything imports the app: granian forks its workers, which must import
        # prometheus-client themselves, after the multiprocess directory is set.
        _prepare_workers(cfg, env, config_path, log_format, shared_metrics=workers > 1)
        granian(
            "weather_proxy.server:worker_app",
            host=host,
            port=port,
            workers=workers,
            graceful_seconds=graceful_seconds(cfg),
            http=cfg.http,
            tls=cfg.listen.tls,
        ).serve()
        return
    import uvicorn

    from weather_proxy import app as app_mod
    from weather_proxy.http import protocol
    from weather_proxy.observability import logging as logs

    options = {
        **UVICORN_SETTINGS,
        "timeout_graceful_shutdown": graceful_seconds(cfg),
        **uvicorn_tls(cfg.listen.tls),
    }
    if workers <= 1:
        application = serving_app(app_mod.create_app(cfg, config_path=config_path, settings=env), cfg)
        protocol.configure(cfg.http)
        logs.configure(cfg.observability.log_level, log_format)
        uvicorn.run(application, host=host, port=port, **options)
        return
    _prepare_workers(cfg, env, config_path, log_format, shared_metrics=True)
    uvicorn.run(
        "weather_proxy.server:worker_app", factory=True, host=host, port=port, workers=workers, **options
    )


def uvicorn_tls(tls: config_mod.ServingTls | None) -> dict[str, Any]:
    """uvicorn's HTTPS settings: our own, reloadable SSL context (``http.tls``) for these files."""
    if tls is None:
        return {}
    from weather_proxy.http import tls as tls_mod

    return {
        "ssl_certfile": tls.cert_file,
        "ssl_keyfile": tls.key_file,
        "ssl_context_factory": tls_mod.uvicorn_context,
    }


def _prepare_workers(
    cfg: config_mod.ProxyConfig,
    env: settings.ProxySettings,
    config_path: str | None,
    log_format: str,
    *,
    shared_metrics: bool,
) -> None:
    """What a spawned worker reads to build the same app: its environment is a copy of ours."""
    from weather_proxy.observability import logging as logs

    env.apply(cfg)  # a bad override fails here, not in every worker
    logs.configure(cfg.observability.log_level, log_format)
    if config_path is not None:
        os.environ[settings.ENV_CONFIG] = str(config_path)
    else:
        os.environ.pop(settings.ENV_CONFIG, None)
    os.environ[settings.ENV_LOG_FORMAT] = log_format
    if shared_metrics:
        os.environ[settings.ENV_METRICS_DIR] = str(_metrics_dir(env.metrics_dir))


def granian(
    target: str,
    *,
    host: str,
    port: int,
    workers: int,
    graceful_seconds: int = 5,
    http: config_mod.Http | None = None,
    tls: config_mod.ServingTls | None = None,
) -> Any:
    """A Granian server of the app factory ``target`` ("module:function") with the proxy's settings.

    Asyncio on uvloop, no access log (the audit line is ours), no websockets, failed workers
    respawned; on SIGTERM a worker finishes its requests and runs the app's shutdown.
    bench/serve.py serves its baselines with the same.

    Request heads get ``http``'s bounds (the defaults without it). Granian's read buffer is the
    head's bound: a head that does not fit gets 431 (a long URL too: hyper's 414 needs 64 KiB), as do
    more than 100 header lines (hyper's fixed bound); a connection that has begun a head and not
    finished it within the timeout is closed without an answer. Unlike uvicorn here, granian
    leaves open a connection that never sends a byte. Its answers to these and to malformed
    requests (400) have empty bodies, not problem documents: they come from its Rust server.

    With ``tls`` it serves HTTPS (TLS 1.2 or later). Each worker reads the files once, when it
    starts: a renewed certificate needs new workers (docs/http-server.md, TLS).
    """
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.http import HTTP1Settings, HTTP2Settings

    limits = http or config_mod.Http()
    tls_options: dict[str, Any] = {}
    if tls is not None:
        from granian.constants import SSLProtocols

        tls_options = {
            "ssl_cert": pathlib.Path(tls.cert_file),
            "ssl_key": pathlib.Path(tls.key_file),
            "ssl_protocol_min": SSLProtocols.tls12,
        }
    return Granian(
        target,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        websockets=False,
        log_access=False,
        respawn_failed_workers=True,
        workers_kill_timeout=graceful_seconds,
        http1_settings=HTTP1Settings(
            header_read_timeout=round(limits.header_timeout_seconds * 1000),
            max_buffer_size=limits.max_header_bytes,
        ),
        http2_settings=HTTP2Settings(max_headers_size=limits.max_header_bytes),
        **tls_options,
    )


def _metrics_dir(given: str | None) -> pathlib.Path:
    """An empty directory for the workers' metric files (a restarted pod must not count twice)."""
    path = pathlib.Path(given) if given else pathlib.Path(tempfile.gettempdir()) / "weather-proxy-metrics"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory), from the config its supervisor loaded."""
    from weather_proxy import app as app_mod
    from weather_proxy.http import protocol
    from weather_proxy.observability import logging as logs

    env = settings.ProxySettings.from_env()
    path = env.config_path
    cfg = config_mod.load_config(path) if path else config_mod.ProxyConfig()
    logs.configure(cfg.observability.log_level, env.log_format)
    # A spawned uvicorn worker builds its app before it accepts a connection: its protocol's limits
    # are set in time. Under granian this is unused and harmless.
    protocol.configure(cfg.http)
    return serving_app(app_mod.create_app(cfg, config_path=path, settings=env), cfg)


def serving_app(app: Any, cfg: config_mod.ProxyConfig) -> Any:
    """``app`` as served: behind uvicorn's forwarded-headers middleware when there are trusted proxies.

    The client address and scheme then come from X-Forwarded-For/-Proto, but only on connections
    from ``http.trustedProxies`` (the rightmost address not among them is the client's). With no
    trusted proxy nothing is added in front of the app.
    """
    if not cfg.http.trusted_proxies:
        return app
    import ipaddress

    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    # uvicorn reads a network only in its strict form (10.0.0.0/8, not 10.1.2.3/8).
    networks = [str(ipaddress.ip_network(entry, strict=False)) for entry in cfg.http.trusted_proxies]
    return ProxyHeadersMiddleware(app, trusted_hosts=networks)
