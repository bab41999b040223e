"""Rate limits per key with the `limits` library: sliding-window counter, Redis or memory.

Burst is expressed as headroom in the minute window: one item
``RateLimitItemPerMinute(requestsPerMinute + burst)``. The sliding-window
counter smooths the window edge (no double burst at minute boundaries) and
costs one Lua call per hit. The limit is fleet-wide in Redis; while Redis is
down every process enforces it alone (MemoryStorage), so a fleet of N
replicas then admits up to N times the limit.

Hot path: `limits`' strategy API needs two round trips for a hit plus the
numbers of the RateLimit-* headers (``hit`` then ``get_window_stats``). On the
Redis path the same two Lua scripts of `limits`' Redis storage, on the same
keys, are sent in one pipeline (one round trip, about half the client CPU);
the strategy API is the fallback when a script is not loaded yet.

Even one round trip per request is more than the cache-hit budget, so a key
that is busy in this process takes its tokens in leases (``lease``): one
acquire of several tokens, spent locally, with bounded and documented
deviation. Keys with small limits, or quiet ones, still make one call per request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from typing import Any

import limits
import limits.aio.storage
import limits.aio.strategies
import redis.exceptions

from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.ratelimit import lease as lease_mod

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

    def __init__(self, link: redis_link.RedisLink, redis_url: str | None, *, leasing: bool = True) -> None:
        self.link = link
        self.leasing = leasing
        self._leases: dict[tuple[str, int], lease_mod.Lease] = {}
        self._renewing: dict[tuple[str, int], asyncio.Future[None]] = {}
        self._items: dict[tuple[int, int], limits.RateLimitItem] = {}
        self.memory = limits.aio.storage.MemoryStorage()
        self.local = limits.aio.strategies.SlidingWindowCounterRateLimiter(self.memory)
        self.fleet: limits.aio.strategies.SlidingWindowCounterRateLimiter | None = None
        self.storage: limits.aio.storage.RedisStorage | None = None
        if link.client is not None and redis_url is not None:
            self.storage = storage = limits.aio.storage.RedisStorage(
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
        """Count one request and say whether it is allowed (from a lease when the key holds one)."""
        item = self.item(limit)
        if not self.leasing or self.fleet is None or not self.link.usable:
            return await self._hit(item, limiter_id, 1)
        key = (limiter_id, item.amount)
        while True:
            held = self._leases.get(key)
            if held is not None and held.take(time.monotonic()):
                return self._leased(item, held)
            pending = self._renewing.get(key)
            if pending is None:
                break
            # Someone is renewing this key's lease: share it rather than take another.
            await asyncio.shield(pending)
        renewal = asyncio.get_running_loop().create_future()
        self._renewing[key] = renewal
        try:
            return await self._renew(key, item, limiter_id, held)
        finally:
            del self._renewing[key]
            renewal.set_result(None)

    async def _renew(
        self,
        key: tuple[str, int],
        item: limits.RateLimitItem,
        limiter_id: str,
        previous: lease_mod.Lease | None,
    ) -> Decision:
        size = lease_mod.next_size(previous, time.monotonic(), item.amount)
        decision, size = await self._count(item, limiter_id, size)
        if not decision.allowed and size > 1:
            # Near the limit a whole lease no longer fits; one request may.
            decision, size = await self._count(item, limiter_id, 1)
        if decision.allowed:
            self._leases[key] = lease_mod.grant(
                size, decision.remaining, time.time() + decision.reset_seconds
            )
            decision = dataclasses.replace(decision, remaining=decision.remaining + size - 1)
        else:
            self._leases.pop(key, None)
        return decision

    @staticmethod
    def _leased(item: limits.RateLimitItem, held: lease_mod.Lease) -> Decision:
        reset = max(0, math.ceil(held.reset_at - time.time()))
        return Decision(True, item.amount, held.remaining + held.tokens, reset)

    def unspent(self, limiter_id: str, limit: config_mod.Limit) -> int:
        """Tokens this process holds for a bucket: counted in the fleet window, not yet used."""
        held = self._leases.get((limiter_id, self.item(limit).amount))
        return held.tokens if held is not None and time.monotonic() < held.expires_at else 0

    async def _hit(self, item: limits.RateLimitItem, limiter_id: str, cost: int) -> Decision:
        """Count one request, in the fleet window (or this process's while Redis is down)."""
        decision, _ = await self._count(item, limiter_id, cost)
        return decision

    async def _count(self, item: limits.RateLimitItem, limiter_id: str, cost: int) -> tuple[Decision, int]:
        """Count ``cost`` requests in the fleet window; the decision and the cost actually counted.

        While Redis is down (or fails now) the local window counts 1: leases are fleet-only.
        """
        strategy = self._strategy()
        if strategy is not self.local:
            try:
                decision = await self._pipelined_hit(item, limiter_id, cost)
            except redis.exceptions.NoScriptError:
                pass  # the strategy call below loads the scripts
            except redis_link.ERRORS as exc:
                self.link.failed(exc)
                strategy = self.local
            else:
                self.link.ok()
                return decision, cost
        if strategy is not self.local:
            try:
                allowed = await strategy.hit(item, limiter_id, cost=cost)
                stats = await strategy.get_window_stats(item, limiter_id)
            except redis_link.ERRORS as exc:
                self.link.failed(exc)
            else:
                self.link.ok()
                return self._decision(allowed, item, stats), cost
        allowed = await self.local.hit(item, limiter_id)
        stats = await self.local.get_window_stats(item, limiter_id)
        return self._decision(allowed, item, stats), 1

    async def peek(self, limiter_id: str, limit: config_mod.Limit) -> Decision:
        """The current window without counting a request (for /v1/usage)."""
        item = self.item(limit)
        strategy = self._strategy()
        try:
            stats = await strategy.get_window_stats(item, limiter_id)
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            stats = await self.local.get_window_stats(item, limiter_id)
        decision = self._decision(stats.remaining > 0, item, stats)
        unspent = self.unspent(limiter_id, limit)
        return dataclasses.replace(decision, remaining=decision.remaining + unspent) if unspent else decision

    async def _pipelined_hit(self, item: limits.RateLimitItem, limiter_id: str, cost: int) -> Decision:
        """`limits`' acquire + read scripts of the sliding-window counter in one round trip."""
        storage = self.storage
        assert storage is not None
        assert self.link.client is not None
        bridge: Any = storage.bridge
        key = item.key_for(limiter_id)
        previous = bridge.prefixed_key(storage._previous_window_key(key))
        current = bridge.prefixed_key(storage._current_window_key(key))
        expiry = item.get_expiry()
        pipe = self.link.client.pipeline(transaction=False)
        pipe.evalsha(bridge.lua_acquire_sliding_window.sha, 2, previous, current, item.amount, expiry, cost)
        pipe.evalsha(bridge.lua_sliding_window.sha, 2, previous, current, expiry)
        acquired, window = await pipe.execute(raise_on_error=True)
        previous_count = int(window[0] or 0)
        previous_ttl = max(0.0, float(window[1] or 0)) / 1000
        current_count = int(window[2] or 0)
        current_ttl = max(0.0, float(window[3] or 0)) / 1000
        # The arithmetic of SlidingWindowCounterRateLimiter.get_window_stats, on the piped read.
        weighted = previous_count * previous_ttl / expiry + current_count
        remaining = max(0, item.amount - math.floor(weighted))
        now = time.time()
        reset_at = now
        if previous_count or current_count:
            previous_reset = previous_ttl % (expiry / previous_count) if previous_count else math.inf
            current_reset = current_ttl % expiry if current_count else math.inf
            reset_at = now + min(previous_reset, current_reset)
        return self._decision(bool(acquired), item, limits.WindowStats(reset_at, remaining))

    @staticmethod
    def _decision(allowed: bool, item: limits.RateLimitItem, stats: limits.WindowStats) -> Decision:
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            reset = max(1, reset)
        return Decision(allowed, item.amount, max(0, stats.remaining), reset)
