"""Rate limits per key with the `limits` library: sliding-window counter, Redis or memory.

Burst is expressed as headroom in the minute window: one item
``RateLimitItemPerMinute(requestsPerMinute + burst)``. The sliding-window
counter smooths the window edge (no double burst at minute boundaries) and
costs one Lua call per hit. The limit is fleet-wide in Redis; while Redis is
down every process enforces it alone (MemoryStorage), so a fleet of N
replicas then admits up to N times the limit.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import limits
import limits.aio.storage
import limits.aio.strategies

from weather_proxy import config as config_mod
from weather_proxy import redis_link

log = logging.getLogger(__name__)

KEY_PREFIX = "weather-proxy:limits"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


def storage_uri(url: str) -> str:
    """Our redis URL as a `limits` async storage URI."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url


class Limiter:
    """Sliding-window-counter limits: fleet-wide through Redis, else in this process."""

    def __init__(self, link: redis_link.RedisLink, redis_url: str | None) -> None:
        self.link = link
        self._items: dict[tuple[int, int], limits.RateLimitItem] = {}
        self.memory = limits.aio.storage.MemoryStorage()
        self.local = limits.aio.strategies.SlidingWindowCounterRateLimiter(self.memory)
        self.fleet: limits.aio.strategies.SlidingWindowCounterRateLimiter | None = None
        if link.client is not None and redis_url is not None:
            storage = limits.aio.storage.RedisStorage(
                storage_uri(redis_url),
                implementation="redispy",
                key_prefix=KEY_PREFIX,
                connection_pool=link.client.connection_pool,  # type: ignore[arg-type]
            )
            self.fleet = limits.aio.strategies.SlidingWindowCounterRateLimiter(storage)

    def item(self, limit: config_mod.Limit) -> limits.RateLimitItem:
        spec = (limit.requests_per_minute, limit.burst)
        item = self._items.get(spec)
        if item is None:
            item = self._items[spec] = limits.RateLimitItemPerMinute(spec[0] + spec[1])
        return item

    def _strategy(self) -> limits.aio.strategies.SlidingWindowCounterRateLimiter:
        return self.fleet if self.fleet is not None and self.link.usable else self.local

    async def hit(self, limiter_id: str, limit: config_mod.Limit) -> Decision:
        """Count one request and say whether it is allowed."""
        item = self.item(limit)
        strategy = self._strategy()
        try:
            allowed = await strategy.hit(item, limiter_id)
            stats = await strategy.get_window_stats(item, limiter_id)
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            strategy = self.local
            allowed = await strategy.hit(item, limiter_id)
            stats = await strategy.get_window_stats(item, limiter_id)
        else:
            if strategy is not self.local:
                self.link.ok()
        return self._decision(allowed, item, stats)

    async def peek(self, limiter_id: str, limit: config_mod.Limit) -> Decision:
        """The current window without counting a request (for /v1/usage)."""
        item = self.item(limit)
        strategy = self._strategy()
        try:
            stats = await strategy.get_window_stats(item, limiter_id)
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            stats = await self.local.get_window_stats(item, limiter_id)
        return self._decision(stats.remaining > 0, item, stats)

    @staticmethod
    def _decision(allowed: bool, item: limits.RateLimitItem, stats: limits.WindowStats) -> Decision:
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            reset = max(1, reset)
        return Decision(allowed, item.amount, max(0, stats.remaining), reset)
