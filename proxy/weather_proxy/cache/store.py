"""The two cache tiers: L1 in-process (cachetools TLRU) in front of L2 Redis.

L1 keeps every entry until its own deadline (the weather's stale deadline, the
geocoding's expiry), bounded by ``cache.memory.maxEntries``. With Redis there,
an L1 entry is trusted alone for at most ``cache.memory.ttlSeconds`` (so a
replica picks up what others refreshed); past that it is read through L2 first.
While Redis is down, L1 is the only tier and trusted up to the entries' own
deadlines: a Redis outage must not shorten the stale window that stale-if-error
serves from. Redis errors degrade to L1 only.
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


def _weather_until(_key: str, value: tuple[entries.WeatherEntry, float], _now: float) -> float:
    return value[0].stale_until


def _geo_until(_key: str, value: tuple[entries.GeoEntry, float], _now: float) -> float:
    return value[0].expires_at


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cfg = cache_config
        self.link = link
        self.metrics = metrics
        self.clock = clock
        # Values are (entry, trusted_until): until when L1 may answer without L2 (see ``trusted``),
        # decided at put time. Items leave L1 at the entry's own deadline (or by LRU eviction).
        self.weather_l1: L1Cache[tuple[entries.WeatherEntry, float]] = L1Cache(
            maxsize=max_entries, ttu=_weather_until, timer=clock
        )
        self.geo_l1: L1Cache[tuple[entries.GeoEntry, float]] = L1Cache(
            maxsize=max_entries, ttu=_geo_until, timer=clock
        )

    def _l1_expiry(self, now: float, until: float) -> float:
        if self.link.configured:
            return min(until, now + self._cfg().memory.ttl_seconds)
        return until

    def trusted(self, trusted_until: float, now: float) -> bool:
        """Whether an L1 item may answer alone: within its L1 lifetime, or at any age while Redis is down.

        Redis being up is what the app last saw (a failed operation or the health ping says
        otherwise); without Redis configured the lifetime already is the entry's deadline.
        """
        return now < trusted_until or not self.link.up

    # -- weather -------------------------------------------------------------------

    def weather_l1_get(self, key: str, now: float | None = None) -> entries.WeatherEntry | None:
        """The L1 entry if it may answer alone (``trusted``), or None."""
        item = self.weather_l1.get(key)
        if item is None or not self.trusted(item[1], self.clock() if now is None else now):
            return None
        return item[0]

    def weather_l1_last(self, key: str) -> entries.WeatherEntry | None:
        """The L1 entry whatever its L1 lifetime: what stands in when neither L2 nor upstream can."""
        item = self.weather_l1.get(key)
        return item[0] if item is not None else None

    def weather_l1_item(self, key: str) -> tuple[entries.WeatherEntry, float] | None:
        """The L1 entry with the time it stops being ``trusted`` alone while Redis is up, or None."""
        return self.weather_l1.get(key)

    def geo_l1_item(self, key: str) -> tuple[entries.GeoEntry, float] | None:
        """The L1 geocoding entry with the time it stops being ``trusted`` alone while Redis is up."""
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
        now = self.clock() if now is None else now
        if entry.stale_until > now:
            self.weather_l1[key] = (entry, self._l1_expiry(now, entry.stale_until))

    async def weather_put(self, key: str, entry: entries.WeatherEntry) -> None:
        """Write both tiers (L2 with a TTL of the entry's stale deadline)."""
        now = self.clock()
        self.weather_l1_put(key, entry, now)
        await self._l2_set(WEATHER_PREFIX + key, entry.encode(), int((entry.stale_until - now) * 1000))

    # -- geocoding -----------------------------------------------------------------

    def geo_l1_get(self, key: str, now: float | None = None) -> entries.GeoEntry | None:
        """The L1 geocoding entry if it may answer alone (``trusted``), or None."""
        item = self.geo_l1.get(key)
        if item is None or not self.trusted(item[1], self.clock() if now is None else now):
            return None
        return item[0]

    def geo_l1_last(self, key: str) -> entries.GeoEntry | None:
        """The L1 geocoding entry whatever its L1 lifetime (see ``weather_l1_last``)."""
        item = self.geo_l1.get(key)
        return item[0] if item is not None else None

    def generations(self) -> tuple[int, int]:
        """Changes as soon as either L1 is written to or loses an item (see ``L1Cache``)."""
        return self.geo_l1.generation, self.weather_l1.generation

    async def geo_l2_get(self, key: str) -> entries.GeoEntry | None:
        """An unexpired L2 entry (copied into L1), or None."""
        now = self.clock()
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
        now = self.clock()
        if entry.expires_at <= now:
            return
        self.geo_l1[key] = (entry, self._l1_expiry(now, entry.expires_at))
        await self._l2_set(GEO_PREFIX + key, entry.encode(), int((entry.expires_at - now) * 1000))
