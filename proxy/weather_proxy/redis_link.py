"""The app's Redis connection and its health, shared by cache, limits, locks and analytics.

Redis is optional and may go away at any time: every user checks ``usable``
first and reports errors back with ``failed()``. Two kinds of failure are told apart:

* **down** (connection refused or reset, a failing ping): Redis leaves the hot
  path for a second (no per-request connect attempts while it is down) and the
  background ping brings it back;
* **busy** (a command or connect timing out, no pooled connection free within
  the pool timeout): only that one operation falls back. A cold burst on a
  loaded machine produces these; marking Redis down for them would make every
  replica fail open (fleet locks, limits) at the very moment they matter most.

The pool is a bounded ``BlockingConnectionPool``: a burst queues for a
connection instead of opening one per request, and ``warm_up`` opens a few at
start so the first burst does not pay for TCP connects.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from weather_proxy import config as config_mod
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
RETRY_AFTER_FAILURE_SECONDS = 1.0
PING_INTERVAL_SECONDS = 1.0
POOL_SIZE = 32
POOL_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 1.0
WARM_CONNECTIONS = 8
NO_CONNECTION_AVAILABLE = "No connection available."


def make_client(
    url: str,
    password: str | None,
    max_connections: int = POOL_SIZE,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    tls: config_mod.ServerCa | None = None,
) -> aioredis.Redis:
    """A redis.asyncio client on a bounded blocking pool, short timeouts, no retries (callers fall back).

    A ``rediss://`` URL is TLS: the server's certificate must chain to ``tls.caFile`` (the system's
    trust store without it) and name the URL's host; TLS 1.2 at least.
    """
    options: dict[str, object] = {}
    if url.startswith("rediss://"):
        options = {
            "ssl_cert_reqs": "required",
            "ssl_check_hostname": True,
            "ssl_min_version": ssl.TLSVersion.TLSv1_2,
        }
        if tls is not None:
            options["ssl_ca_certs"] = tls.ca_file
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        password=password or None,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
        max_connections=max_connections,
        timeout=pool_timeout,
        decode_responses=False,
        **options,
    )
    return aioredis.Redis.from_pool(pool)


def is_busy(exc: BaseException) -> bool:
    """A failure of load, not of Redis: a timeout, or no pooled connection free in time."""
    if isinstance(exc, (redis.exceptions.TimeoutError, asyncio.TimeoutError)):
        return True
    return isinstance(exc, redis.exceptions.ConnectionError) and str(exc) == NO_CONNECTION_AVAILABLE


class RedisLink:
    """A Redis client (or None when not configured) and whether it currently answers."""

    def __init__(
        self,
        client: aioredis.Redis | None,
        metrics: metrics_mod.Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.metrics = metrics
        # Reads the pause after a failure (an interval: monotonic); a test moves it instead of waiting.
        self.clock = clock
        self.up = False
        self.last_error: str | None = None if client else "not configured"
        self.busy_errors = 0
        self._retry_at = 0.0

    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def usable(self) -> bool:
        """Worth trying now: configured, and up or due for another attempt."""
        return self.client is not None and (self.up or self.clock() >= self._retry_at)

    def ok(self) -> None:
        if not self.up:
            self.up = True
            self.last_error = None
            self.metrics.redis_up.set(1)
            log.info("redis is up")

    def failed(self, exc: BaseException) -> None:
        """An operation failed: mark Redis down unless the failure only says it is busy."""
        if is_busy(exc):
            self.busy_errors += 1
            self.metrics.redis_busy.inc()
            log.debug("redis busy, one operation falls back: %s", exc)
            return
        self.down(exc)

    def down(self, exc: BaseException) -> None:
        self._retry_at = self.clock() + RETRY_AFTER_FAILURE_SECONDS
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.up:
            self.up = False
            self.metrics.redis_up.set(0)
            log.warning("redis is down, serving from local cache and limits: %s", self.last_error)

    async def ping(self) -> bool:
        """Any failure of the health ping, timeouts included, marks Redis down."""
        if self.client is None:
            return False
        try:
            await self.client.ping()
        except ERRORS as exc:
            self.down(exc)
            return False
        self.ok()
        return True

    async def warm_up(self, connections: int = WARM_CONNECTIONS) -> int:
        """Open up to ``connections`` pooled connections now; returns how many opened."""
        if self.client is None:
            return 0
        pool = self.client.connection_pool
        results = await asyncio.gather(
            *(pool.get_connection() for _ in range(connections)),  # type: ignore[no-untyped-call]
            return_exceptions=True,
        )
        opened = 0
        for result in results:
            if isinstance(result, BaseException):
                if not isinstance(result, ERRORS):
                    raise result
                continue
            opened += 1
            await pool.release(result)
        return opened

    async def run_health(self) -> None:
        while True:
            await self.ping()
            await asyncio.sleep(PING_INTERVAL_SECONDS)

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
