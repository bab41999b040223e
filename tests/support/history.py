"""Building blocks of the usage-history tests: keys with scopes, configs, the app, the database.

The app runs in the test's event loop with its lifespan (the writer, the maintenance timer
and the schema are real), spoken to over ASGI; PostgreSQL is the real one of
``testbed.postgres_server``, the upstream the Open-Meteo emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg

from devcluster import openmeteo as om
from testbed import postgres_server, proxy_process
from weather_proxy import app as app_mod
from weather_proxy import config as config_mod

READER_KEY = "wpk_history_reader_0123456789abcdef01234567"  # weather, usage and analytics
USER_KEY = "wpk_history_user_89abcdef0123456789abcdef0123"  # weather and usage only
READER_ID = "weather/reader"
USER_ID = "weather/user"
CLIENT_ADDRESS = "10.0.0.1"  # what the app sees as the client's address: never stored


def keys_file(path: pathlib.Path) -> pathlib.Path:
    keys = config_mod.KeysFile(
        keys=[
            proxy_process.key_entry(
                READER_ID,
                READER_KEY,
                scopes=[
                    config_mod.Scope.WEATHER_READ,
                    config_mod.Scope.USAGE_READ,
                    config_mod.Scope.ANALYTICS_READ,
                ],
            ),
            proxy_process.key_entry(USER_ID, USER_KEY),
        ]
    )
    path.write_text(proxy_process.to_yaml(keys))
    return path


def analytics(database: postgres_server.AnalyticsDatabase | str, **fields: Any) -> dict[str, Any]:
    """The config's analytics section (camelCase) for a test database (or any URL); fast flushes."""
    url = database if isinstance(database, str) else database.url
    section: dict[str, Any] = {
        "database": {"url": url, "connectTimeoutSeconds": 2, "statementTimeoutSeconds": 2},
        "writer": {"flushIntervalSeconds": 0.05},
    }
    for name, value in fields.items():
        if isinstance(value, dict) and isinstance(section.get(name), dict):
            section[name] = {**section[name], **value}
        else:
            section[name] = value
    return section


def config(
    emulator: om.OpenMeteoEmulator, keys: pathlib.Path | None, **sections: Any
) -> config_mod.ProxyConfig:
    data: dict[str, Any] = {
        "upstream": {
            "geocodingUrl": emulator.geocoding_url,
            "forecastUrl": emulator.forecast_url,
            "timeoutSeconds": 2,
            "retries": {"attempts": 1},
        },
        "auth": {"required": True, "keysFile": str(keys) if keys else None},
        "rateLimit": {"default": {"requestsPerMinute": 100_000, "burst": 10_000}},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return config_mod.ProxyConfig.model_validate(data)


@contextlib.asynccontextmanager
async def running(
    cfg: config_mod.ProxyConfig, password: str | None = None
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app with its lifespan running, and a client speaking ASGI to it."""
    environ = {config_mod.ANALYTICS_PASSWORD_ENV: password} if password else {}
    app = app_mod.create_app(cfg, environ=environ)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(CLIENT_ADDRESS, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test", timeout=60) as client:
            yield app, client


async def until(predicate: Callable[[], bool], within: float = 20.0) -> None:
    """Wait (polling the app's state) until ``predicate()``; fails the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - the state belongs to the app: nothing to wait on
            await asyncio.sleep(0.02)


async def schema_ready(app: Any) -> None:
    await until(lambda: app.state.runtime.history.migrated)


async def written(app: Any) -> None:
    """Everything queued so far is in the database."""
    writer = app.state.runtime.history.writer
    await until(lambda: writer.queued == 0 and not writer._calls)
    await asyncio.sleep(0.1)  # a flush popped the last batch: let its COPY commit


def query(database: postgres_server.AnalyticsDatabase, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the test database (a connection of the test's own)."""
    conninfo = psycopg.conninfo.make_conninfo(database.url, password=database.password)
    with psycopg.connect(conninfo) as conn:
        return list(conn.execute(sql, params or None).fetchall())
