"""Fixtures for the proxy integration tests: emulator, redis-server, PostgreSQL, proxy processes, configs."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster import openmeteo as om
from devcluster.fixtures import openmeteo  # noqa: F401
from testbed.postgres_server import analytics_database, postgres_server  # noqa: F401
from testbed.proxy_process import proxy_factory  # noqa: F401
from testbed.redis_server import redis_server, redis_url  # noqa: F401
from tests.integration.proxy import scenario
from weather_proxy import config as proxy_config


@pytest.fixture
def make_config(openmeteo: om.OpenMeteoEmulator, redis_url: str) -> scenario.ConfigBuilder:  # noqa: F811
    """``make_config(**options)``: scenario.build_config bound to this test's emulator and Redis."""

    def make(**options: Any) -> proxy_config.ProxyConfig:
        options.setdefault("redis", redis_url)
        return scenario.build_config(openmeteo, **options)

    return make
