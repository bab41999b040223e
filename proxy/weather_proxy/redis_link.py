"""The app's Redis connection and its health, shared by cache, limits, locks and analytics.

Redis is optional and may go away at any time: every user checks ``usable``
first and reports errors back with ``failed()``, which takes Redis out of the
hot path for a second (no per-request connect timeouts while it is down);
a background ping brings it back.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
RETRY_AFTER_FAILURE_SECONDS = 1.0
PING_INTERVAL_SECONDS = 1.0


def make_client(url: str, password: str | None, max_connections: int = 200) -> aioredis.Redis:
    """A redis.asyncio client with short timeouts and no retries (callers fall back instead)."""
    return aioredis.Redis.from_url(
        url,
        password=password or None,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        max_connections=max_connections,
        decode_responses=False,
    )


class RedisLink:
    """A Redis client (or None when not configured) and whether it currently answers."""

    def __init__(self, client: aioredis.Redis | None, metrics: metrics_mod.Metrics) -> None:
        self.client = client
        self.metrics = metrics
        self.up = False
        self.last_error: str | None = None if client else "not configured"
        self._retry_at = 0.0

    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def usable(self) -> bool:
        """Worth trying now: configured, and up or due for another attempt."""
        return self.client is not None and (self.up or time.monotonic() >= self._retry_at)

    def ok(self) -> None:
        if not self.up:
            self.up = True
            self.last_error = None
            self.metrics.redis_up.set(1)
            log.info("redis is up")

    def failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_SECONDS
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.up:
            self.up = False
            self.metrics.redis_up.set(0)
            log.warning("redis is down, serving from local cache and limits: %s", self.last_error)

    async def ping(self) -> bool:
        if self.client is None:
            return False
        try:
            await self.client.ping()
        except ERRORS as exc:
            self.failed(exc)
            return False
        self.ok()
        return True

    async def run_health(self) -> None:
        while True:
            await self.ping()
            await asyncio.sleep(PING_INTERVAL_SECONDS)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
