"""Request coalescing: one upstream call per key per process, and per fleet.

In a process, concurrent callers for one key share one in-flight task. Across
the fleet, the caller that misses takes a Redis lock (``SET NX PX`` with a
random token, released by a compare-and-delete Lua script, so a slow holder
never frees someone else's lock); the others poll L2 until the holder wrote
the entry, for a bounded time, then fall back to calling upstream themselves.

Waiting costs little Redis: in-process sharing means one waiter per key per
process, and it holds a pooled connection only for each short GET, polling
with a growing interval. A lock that cannot be taken because Redis is busy
(timeout, pool exhausted) is tried again before failing open: failing open in
a burst is what makes every replica call upstream.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import typing
from collections.abc import Awaitable, Callable
from typing import TypeVar

from weather_proxy import redis_link
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

T = TypeVar("T")
LOCK_PREFIX = "weather-proxy:lock:"
ACQUIRE_ATTEMPTS = 3
FIRST_POLL_SECONDS = 0.02
MAX_POLL_SECONDS = 0.2
RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Coalescer:
    """Shares one in-flight task per key between concurrent callers of this process."""

    def __init__(self, metrics: metrics_mod.Metrics) -> None:
        self.metrics = metrics
        self._inflight: dict[str, asyncio.Future[typing.Any]] = {}

    def inflight(self, key: str) -> bool:
        return key in self._inflight

    async def run(self, key: str, factory: Callable[[], Awaitable[T]], *, counted: bool = True) -> T:
        """Await the in-flight call for ``key`` or start one; a caller's cancellation spares the call.

        ``counted``: a joiner counts as a coalesced request (not for shared cache reads).
        """
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(factory())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        elif counted:
            self.metrics.coalesced.labels("process").inc()
        return typing.cast(T, await asyncio.shield(task))

    def _forget(self, key: str, task: asyncio.Future[typing.Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaited is not "never retrieved"

    async def aclose(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class FleetLock:
    """A Redis lock per key with a random token and a safe release."""

    def __init__(self, link: redis_link.RedisLink, metrics: metrics_mod.Metrics) -> None:
        self.link = link
        self.metrics = metrics
        self._release = link.client.register_script(RELEASE_SCRIPT) if link.client is not None else None

    async def acquire(self, key: str, ttl_seconds: float, attempts: int = ACQUIRE_ATTEMPTS) -> str | None:
        """The token when this caller holds the lock; None when another does.

        Returns ``""`` (falsy but not None) when Redis cannot be used (down, or still busy
        after ``attempts`` tries): the caller proceeds alone.
        """
        token = secrets.token_hex(16)
        for _ in range(attempts):
            if not self.link.usable:
                return ""
            assert self.link.client is not None
            try:
                got = await self.link.client.set(
                    LOCK_PREFIX + key, token, nx=True, px=max(1, int(ttl_seconds * 1000))
                )
            except redis_link.ERRORS as exc:
                self.link.failed(exc)
                if not redis_link.is_busy(exc):
                    return ""
                continue
            self.link.ok()
            return token if got else None
        return ""

    async def release(self, key: str, token: str) -> bool:
        if not token or self._release is None or not self.link.usable:
            return False
        try:
            return bool(await self._release(keys=[LOCK_PREFIX + key], args=[token]))
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            return False

    async def wait_for(
        self,
        read: Callable[[], Awaitable[T | None]],
        accept: Callable[[T], bool],
        wait_seconds: float,
        interval: float = FIRST_POLL_SECONDS,
        max_interval: float = MAX_POLL_SECONDS,
    ) -> T | None:
        """Poll ``read`` until it gives an acceptable value or ``wait_seconds`` pass.

        The interval grows by half each time up to ``max_interval``: a quick upstream answer
        is seen soon, a slow one costs few reads.
        """
        self.metrics.coalesced.labels("fleet").inc()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            value = await read()
            if value is not None and accept(value):
                return value
            left = deadline - loop.time()
            if left <= 0:
                return None
            await asyncio.sleep(min(interval, left))
            interval = min(max_interval, interval * 1.5)
