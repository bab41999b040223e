"""``weather-proxy [--config PATH] [--workers N]`` / ``python -m weather_proxy``: run the proxy under uvicorn.

``--version`` prints the version (pyproject.toml's, see :mod:`weather_proxy.version`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from weather_proxy import config as config_mod
from weather_proxy import cpus, settings, version


def parse_args(argv: Sequence[str] | None, env: settings.ProxySettings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="weather-proxy",
        description="Caching, rate-limited proxy for the Open-Meteo weather APIs. Without a config: "
        "built-in defaults (memory cache, auth off, Open-Meteo upstream).",
        epilog="environment:\n" + settings.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=env.config_path,
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


def workers(args: argparse.Namespace, cfg: config_mod.ProxyConfig, env: settings.ProxySettings) -> int:
    """--workers, else $WEATHER_PROXY_WORKERS, else config.yaml's workers, else the container's CPU."""
    if args.workers is not None:
        if args.workers < 1:
            raise config_mod.ConfigError(f"--workers: must be at least 1, got {args.workers}")
        return int(args.workers)
    if env.workers is not None:
        return env.workers
    if cfg.workers is not None:
        return cfg.workers
    return cpus.default_workers(env.cpu_request_millicores)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        env = settings.ProxySettings.from_env()
    except config_mod.ConfigError as exc:
        print(f"weather-proxy: {exc}", file=sys.stderr)
        return 2
    args = parse_args(argv, env)
    from weather_proxy import server

    try:
        cfg = config_mod.load_config(args.config) if args.config else config_mod.ProxyConfig()
        server.run(
            cfg,
            env,
            config_path=args.config,
            host=args.host or cfg.listen.host,
            port=args.port or cfg.listen.port,
            workers=workers(args, cfg, env),
            log_format=args.log_format,
        )
    except config_mod.ConfigError as exc:
        print(f"weather-proxy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
