"""The proxy as a uvicorn factory, so it runs under exactly the same uvicorn flags as the baseline.

Config from ``WEATHER_PROXY_CONFIG``; logging set up as ``python -m weather_proxy`` does.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from weather_proxy import app as proxy_app
from weather_proxy import config as proxy_config
from weather_proxy.observability import logging as proxy_logging


def create_app() -> FastAPI:
    config = proxy_config.load_config(os.environ["WEATHER_PROXY_CONFIG"])
    proxy_logging.configure(config.observability.log_level)
    return proxy_app.create_app(config)
