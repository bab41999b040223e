"""Fixtures for the proxy's unit tests: the app with its lifespan, talking to real loopback parts.

The Open-Meteo emulator and redis-server are the shared tests/support ones: real
sockets on 127.0.0.1, no mocks of httpx or redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from devcluster import openmeteo as om
from devcluster.fixtures import openmeteo  # noqa: F401
from testbed.redis_server import redis_server, redis_url  # noqa: F401
from weather_proxy import app as app_mod
from weather_proxy import config as config_mod

KEY = "wpk_unit_test_key"
KEY_SHA = hashlib.sha256(KEY.encode()).hexdigest()


def build_config(emulator: om.OpenMeteoEmulator, **sections: Any) -> config_mod.ProxyConfig:
    """A config pointing at the emulator, fast retries; ``sections`` merge over it (camelCase)."""
    data: dict[str, Any] = {
        "upstream": {
            "geocodingUrl": emulator.geocoding_url,
            "forecastUrl": emulator.forecast_url,
            "timeoutSeconds": 1,
            "retries": {"attempts": 2, "backoffInitialSeconds": 0.01, "backoffMaxSeconds": 0.02},
            "circuitBreaker": {"failureThreshold": 3, "resetTimeoutSeconds": 30},
        },
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return config_mod.ProxyConfig.model_validate(data)


@contextlib.asynccontextmanager
async def running(cfg: config_mod.ProxyConfig, **kwargs: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app with its lifespan running, and an httpx client speaking ASGI to it."""
    kwargs.setdefault("environ", {})
    app = app_mod.create_app(cfg, **kwargs)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.1", 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            yield app, client


AppFactory = Callable[..., contextlib.AbstractAsyncContextManager[tuple[Any, httpx.AsyncClient]]]


@pytest.fixture
def proxy(openmeteo: om.OpenMeteoEmulator) -> AppFactory:  # noqa: F811
    """``async with proxy(**sections) as (app, client)``: the app on the emulator, memory-only."""

    def make(**sections: Any) -> contextlib.AbstractAsyncContextManager[tuple[Any, httpx.AsyncClient]]:
        return running(build_config(openmeteo, **sections))

    return make


@pytest.fixture
def keys_file(tmp_path: Any) -> Any:
    """A keys.yaml with one valid, one disabled and one expired key (plaintexts: KEY, 'off', 'old')."""
    path = tmp_path / "keys.yaml"
    path.write_text(
        "keys:\n"
        f"  - id: weather/team-a\n    sha256: {KEY_SHA}\n    rateLimit: {{requestsPerMinute: 3, burst: 4}}\n"
        f"  - id: weather/off\n    sha256: {hashlib.sha256(b'off').hexdigest()}\n    disabled: true\n"
        f"  - id: weather/old\n    sha256: {hashlib.sha256(b'old').hexdigest()}\n"
        "    expiresAt: 2020-01-01T00:00:00Z\n"
    )
    return path


def age_entry(app: object, key: str, seconds: float) -> None:
    """Move an L1 weather entry ``seconds`` into the past."""
    tiers = app.state.runtime.parts.service.tiers  # type: ignore[attr-defined]
    entry = tiers.weather_l1_get(key)
    old = dataclasses.replace(
        entry,
        fetched_at=entry.fetched_at - seconds,
        fresh_until=entry.fresh_until - seconds,
        stale_until=entry.stale_until - seconds,
    )
    tiers.weather_l1.pop(key)
    tiers.weather_l1_put(key, old)


async def refreshes_done(app: object) -> None:
    """Wait for the background refreshes in flight, and any started meanwhile, to end.

    Awaits the tasks themselves: done means done (a refresh's failure is raised here), with no
    polling interval to tune and no deadline on the wall clock.
    """
    background = app.state.runtime.parts.service._background  # type: ignore[attr-defined]
    while background:
        await asyncio.gather(*background)
