"""``weather-proxy [--config PATH]`` / ``python -m weather_proxy``: run the proxy under uvicorn.

``--version`` prints the version (pyproject.toml's, see :mod:`weather_proxy.version`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from weather_proxy import config as config_mod
from weather_proxy import settings, version


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="weather-proxy",
        description="Caching, rate-limited proxy for the Open-Meteo weather APIs.",
        epilog="Environment: WEATHER_PROXY_CONFIG (config path), "
        "WEATHER_PROXY_REDIS_URL (overrides redis.url), REDIS_PASSWORD. "
        "Without a config: built-in defaults (memory cache, auth off, Open-Meteo upstream).",
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=os.environ.get(settings.ENV_CONFIG),
        help="config.yaml to load and hot-reload (default: $WEATHER_PROXY_CONFIG, else built-in defaults)",
    )
    parser.add_argument("--host", help="bind address (overrides listen.host)")
    parser.add_argument("--port", type=int, help="TCP port (overrides listen.port)")
    parser.add_argument("--log-format", choices=["json", "text"], default="json", help="log line format")
    parser.add_argument(
        "--version",
        action="version",
        version=f"weather-proxy {version.VERSION}",
        help="show the version and exit",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    import uvicorn

    from weather_proxy import app as app_mod
    from weather_proxy.observability import logging as logs

    try:
        cfg = config_mod.load_config(args.config) if args.config else config_mod.ProxyConfig()
        application = app_mod.create_app(cfg, config_path=args.config)
    except config_mod.ConfigError as exc:
        print(f"weather-proxy: {exc}", file=sys.stderr)
        return 2
    logs.configure(cfg.observability.log_level, args.log_format)
    uvicorn.run(
        application,
        host=args.host or cfg.listen.host,
        port=args.port or cfg.listen.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=max(5, int(cfg.http.request_timeout_seconds)),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
