"""Serve the proxy or the bare baseline with one set of uvicorn settings (those of ``weather-proxy``).

python -m bench.serve proxy --port 8081   # config from $WEATHER_PROXY_CONFIG
python -m bench.serve bare --port 8082    # body from $BENCH_BODY_FILE
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI

from bench import bare_app

# The flags weather_proxy.__main__ passes to uvicorn.run, minus the graceful-shutdown timeout.
UVICORN_SETTINGS = {
    "loop": "uvloop",
    "http": "httptools",
    "lifespan": "on",
    "log_config": None,
    "access_log": False,
    "proxy_headers": True,
    "server_header": False,
    "workers": 1,
}


def proxy() -> FastAPI:
    from weather_proxy import app as proxy_app
    from weather_proxy import config as proxy_config
    from weather_proxy.observability import logging as proxy_logging

    path = os.environ["WEATHER_PROXY_CONFIG"]
    config = proxy_config.load_config(path)
    proxy_logging.configure(config.observability.log_level, "json")
    return proxy_app.create_app(config, config_path=path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("which", choices=["proxy", "bare"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = proxy() if args.which == "proxy" else bare_app.create_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, **UVICORN_SETTINGS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
