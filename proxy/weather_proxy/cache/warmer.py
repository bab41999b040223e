"""Cache warming: ``cache.warmCities`` are fetched at start and refreshed before they expire.

Its upstream calls are background calls of the upstream budget: they stop at its
``backgroundPercent`` share and leave the rest to user-driven misses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from weather_proxy import config as config_mod
from weather_proxy.cache import swr
from weather_proxy.upstream import budget
from weather_proxy.upstream import client as upstream

log = logging.getLogger(__name__)


def schedule(ttl_seconds: float) -> tuple[float, float]:
    """(check interval, refresh margin): check 10 times per TTL, refresh in the last fifth."""
    interval = max(1.0, ttl_seconds / 10)
    margin = min(ttl_seconds, max(2 * interval, ttl_seconds / 5))
    return interval, margin


class Warmer:
    """Keeps the configured cities fresh in the caches (the fleet lock spares duplicate calls)."""

    def __init__(self, service: swr.WeatherService, cache_config: Callable[[], config_mod.Cache]) -> None:
        self.service = service
        self._cache = cache_config
        self.last_run_failures = 0

    async def warm_once(self) -> int:
        """Refresh what is due; returns the number of cities refreshed."""
        cfg = self._cache()
        _, margin = schedule(cfg.ttl_seconds)
        refreshed = failures = 0
        for city in cfg.warm_cities:
            try:
                with budget.background():
                    geo = await self.service.locate(city, None)
                    assert geo.location is not None
                    loc = geo.location
                    if await self.service.refresh_if_due(loc.latitude, loc.longitude, margin):
                        refreshed += 1
            except swr.CityNotFound:
                failures += 1
                log.warning("warm city %r: not found upstream", city)
            except (upstream.UpstreamUnavailable, upstream.UpstreamRejected) as exc:
                failures += 1
                log.info("warm city %r: %s", city, exc)
        self.last_run_failures = failures
        return refreshed

    async def run(self) -> None:
        while True:
            await self.warm_once()
            interval, _ = schedule(self._cache().ttl_seconds)
            await asyncio.sleep(interval)
