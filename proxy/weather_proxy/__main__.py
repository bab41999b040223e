"""``weather-proxy [--config PATH] [--workers N]`` / ``python -m weather_proxy``: run the proxy under uvicorn.

``--version`` prints the version (pyproject.toml's, see :mod:`weather_proxy.version`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from weather_proxy import config as config_mod
from weather_proxy import cpus, settings, version


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="weather-proxy",
        description="Caching, rate-limited proxy for the Open-Meteo weather APIs.",
        epilog="Environment: WEATHER_PROXY_CONFIG (config path), "
        "WEATHER_PROXY_REDIS_URL (overrides redis.url), REDIS_PASSWORD, "
        "WEATHER_PROXY_WORKERS (overrides workers), WEATHER_PROXY_CPU_REQUEST_MILLICORES (the CPU "
        "request, for the default of workers when the container has no CPU limit). "
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
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes behind the port (overrides $WEATHER_PROXY_WORKERS and workers; "
        "default: the container's CPU limit or request, else 1)",
    )
    parser.add_argument("--log-format", choices=["json", "text"], default="json", help="log line format")
    parser.add_argument(
        "--version",
        action="version",
        version=f"weather-proxy {version.VERSION}",
        help="show the version and exit",
    )
    return parser.parse_args(argv)


def workers(args: argparse.Namespace, cfg: config_mod.ProxyConfig, environ: Mapping[str, str]) -> int:
    """--workers, else $WEATHER_PROXY_WORKERS, else config.yaml's workers, else the container's CPU."""
    if args.workers is not None:
        if args.workers < 1:
            raise config_mod.ConfigError(f"--workers: must be at least 1, got {args.workers}")
        return int(args.workers)
    given = environ.get(cpus.ENV_WORKERS, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise config_mod.ConfigError(
                f"{cpus.ENV_WORKERS}: must be a whole number >= 1, got {given[:20]!r}"
            )
        return int(given)
    if cfg.workers is not None:
        return cfg.workers
    try:
        return cpus.default_workers(environ)
    except ValueError as exc:
        raise config_mod.ConfigError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from weather_proxy import server

    try:
        cfg = config_mod.load_config(args.config) if args.config else config_mod.ProxyConfig()
        server.run(
            cfg,
            config_path=args.config,
            host=args.host or cfg.listen.host,
            port=args.port or cfg.listen.port,
            workers=workers(args, cfg, os.environ),
            log_format=args.log_format,
        )
    except config_mod.ConfigError as exc:
        print(f"weather-proxy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
