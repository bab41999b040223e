"""Serve the proxy or a bare baseline with the server settings of ``weather-proxy``.

python -m bench.serve proxy --port 8081   # config from $WEATHER_PROXY_CONFIG
python -m bench.serve bare --port 8082    # bare FastAPI; body from $BENCH_BODY_FILE
python -m bench.serve asgi --port 8083    # a bare ASGI callable sending the same body
python -m bench.serve asgi-headers --port 8084   # with a proxy answer's headers ($BENCH_HEADERS_FILE)
python -m bench.serve asgi --port 8085 --server granian   # the same under granian (one worker)
"""

from __future__ import annotations

import argparse
import os

import uvicorn
from fastapi import FastAPI

from bench import bare_app
from weather_proxy import server

# The flags weather_proxy.server passes to uvicorn.run, minus the graceful-shutdown timeout.
UVICORN_SETTINGS = {**server.UVICORN_SETTINGS, "workers": 1}


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
    parser.add_argument("which", choices=["proxy", "bare", "asgi", "asgi-headers"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    args = parser.parse_args()
    if args.server == "granian":
        # Granian imports the app in its worker process, by name (as weather_proxy.server runs it).
        names = {
            "proxy": "bench.serve:proxy",
            "bare": "bench.bare_app:create_app",
            "asgi": "bench.bare_app:asgi_app",
        }
        server.granian(names[args.which], host="127.0.0.1", port=args.port, workers=1).serve()
        return
    apps = {
        "proxy": proxy,
        "bare": bare_app.create_app,
        "asgi": bare_app.asgi_app,
        "asgi-headers": bare_app.asgi_headers_app,
    }
    app = apps[args.which]()
    uvicorn.run(app, host="127.0.0.1", port=args.port, **UVICORN_SETTINGS)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
