"""The two cache tiers: L1 in-process (cachetools TLRU) in front of L2 Redis.

L1 entries live until their stale deadline when Redis is absent (L1 is then the
only tier), and at most ``cache.memory.ttlSeconds`` when Redis is there (so a
replica picks up what others refreshed). Redis errors degrade to L1 only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import cachetools

from weather_proxy import config as config_mod
from weather_proxy import redis_link
from weather_proxy.cache import entries
from weather_proxy.observability import metrics as metrics_mod

log = logging.getLogger(__name__)

WEATHER_PREFIX = "weather-proxy:wx:"
GEO_PREFIX = "weather-proxy:geo:"


V = TypeVar("V")


def _l1_until(value: Any) -> float:
    return float(value[1])


class L1Cache(cachetools.TLRUCache[str, V]):
    """cachetools' TLRU whose every write or removal bumps ``generation``.

    What was read from it stays true while the generation is unchanged and no item's
    expiry has passed: ``WeatherService`` keeps its answers on that condition.
    """

    generation = 0

    def __setitem__(self, key: str, value: V, *args: Any) -> None:
        self.generation += 1
        super().__setitem__(key, value, *args)

    def __delitem__(self, key: str, *args: Any) -> None:
        self.generation += 1
        super().__delitem__(key, *args)


class TieredStore:
    """L1 + L2 get/put of weather and geocoding entries, with cache metrics."""

    def __init__(
        self,
        cache_config: Callable[[], config_mod.Cache],
        link: redis_link.RedisLink,
        metrics: metrics_mod.Metrics,
        max_entries: int,
    ) -> None:
        self._cfg = cache_config
        self.link = link
        self.metrics = metrics
        # Values are (entry, l1_expires_at): the TTL is per item, decided at put time.
        self.weather_l1: L1Cache[tuple[entries.WeatherEntry, float]] = L1Cache(
            maxsize=max_entries, ttu=lambda _k, v, _now: _l1_until(v), timer=time.time
        )
        self.geo_l1: L1Cache[tuple[entries.GeoEntry, float]] = L1Cache(
            maxsize=max_entries, ttu=lambda _k, v, _now: _l1_until(v), timer=time.time
        )

    def _l1_expiry(self, now: float, until: float) -> float:
        if self.link.configured:
            return min(until, now + self._cfg().memory.ttl_seconds)
        return until

    # -- weather -------------------------------------------------------------------

    def weather_l1_get(self, key: str) -> entries.WeatherEntry | None:
        item = self.weather_l1.get(key)
        return item[0] if item is not None else None

    def weather_l1_item(self, key: str) -> tuple[entries.WeatherEntry, float] | None:
        """The L1 entry with the time L1 drops it, or None."""
        return self.weather_l1.get(key)

    def geo_l1_item(self, key: str) -> tuple[entries.GeoEntry, float] | None:
        """The L1 geocoding entry with the time L1 drops it, or None."""
        return self.geo_l1.get(key)

    async def _l2_get(self, redis_key: str) -> bytes | None:
        """The L2 value, or None when absent or Redis is unusable (a failure is reported to the link)."""
        if not self.link.usable:
            return None
        assert self.link.client is not None
        try:
            raw = await self.link.client.get(redis_key)
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            return None
        self.link.ok()
        if raw is None:
            return None
        return raw.encode() if isinstance(raw, str) else bytes(raw)

    async def _l2_set(self, redis_key: str, value: bytes, ttl_ms: int) -> None:
        """Write L2 with a TTL; skipped while Redis is unusable (a failure is reported to the link)."""
        if ttl_ms <= 0 or not self.link.usable:
            return
        assert self.link.client is not None
        try:
            await self.link.client.set(redis_key, value, px=ttl_ms)
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            return
        self.link.ok()

    async def weather_l2_get(self, key: str) -> entries.WeatherEntry | None:
        raw = await self._l2_get(WEATHER_PREFIX + key)
        if raw is None:
            return None
        try:
            return entries.WeatherEntry.decode(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed L2 weather entry for %s", key)
            return None

    def weather_l1_put(self, key: str, entry: entries.WeatherEntry, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if entry.stale_until > now:
            self.weather_l1[key] = (entry, self._l1_expiry(now, entry.stale_until))

    async def weather_put(self, key: str, entry: entries.WeatherEntry) -> None:
        """Write both tiers (L2 with a TTL of the entry's stale deadline)."""
        now = time.time()
        self.weather_l1_put(key, entry, now)
        await self._l2_set(WEATHER_PREFIX + key, entry.encode(), int((entry.stale_until - now) * 1000))

    # -- geocoding -----------------------------------------------------------------

    def geo_l1_get(self, key: str) -> entries.GeoEntry | None:
        item = self.geo_l1.get(key)
        return item[0] if item is not None else None

    def generations(self) -> tuple[int, int]:
        """Changes as soon as either L1 is written to or loses an item (see ``L1Cache``)."""
        return self.geo_l1.generation, self.weather_l1.generation

    async def geo_l2_get(self, key: str) -> entries.GeoEntry | None:
        """An unexpired L2 entry (copied into L1), or None."""
        now = time.time()
        raw = await self._l2_get(GEO_PREFIX + key)
        if raw is None:
            return None
        try:
            entry = entries.GeoEntry.decode(raw)
        except (ValueError, KeyError, TypeError):
            return None
        if entry.expires_at > now:
            self.geo_l1[key] = (entry, self._l1_expiry(now, entry.expires_at))
            return entry
        return None

    async def geo_put(self, key: str, entry: entries.GeoEntry) -> None:
        now = time.time()
        if entry.expires_at <= now:
            return
        self.geo_l1[key] = (entry, self._l1_expiry(now, entry.expires_at))
        await self._l2_set(GEO_PREFIX + key, entry.encode(), int((entry.expires_at - now) * 1000))
