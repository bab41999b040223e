"""Usage analytics: requests per key and most-requested cities, per day, bounded.

The hit path only bumps in-process counters; a background task flushes them to
Redis once a second in one pipeline (HINCRBY per key, ZINCRBY per city, the
city sets trimmed to the top N with ZREMRANGEBYRANK, per-day keys with EXPIRE).
Without Redis the counts are this process's own.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any

from weather_proxy import redis_link

log = logging.getLogger(__name__)

PREFIX = "weather-proxy:usage:"
TOP_CITIES = 100
TOP_CITIES_PER_KEY = 20
KEEP_DAYS = 8
MAX_PENDING = 10_000
FLUSH_SECONDS = 1.0


def today(now: float) -> str:
    return datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%d")


def _next_midnight(now: float) -> float:
    day = datetime.datetime.fromtimestamp(now, datetime.UTC)
    midnight = day.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=1)
    return midnight.timestamp()


class UsageAnalytics:
    """Per-day request counts by key and city (process counters, flushed to Redis)."""

    def __init__(self, link: redis_link.RedisLink, clock: Callable[[], float] = time.time) -> None:
        self.link = link
        # Epoch seconds: the UTC day counted into, and when it ends (a test moves it past midnight).
        self.clock = clock
        now = clock()
        self._day = today(now)
        self._day_ends = _next_midnight(now)
        # The hit path's only counter: (key id, the query's city or None) -> requests, since the last fold.
        self._hits: collections.Counter[tuple[str, str | None]] = collections.Counter()
        self._pending_keys: collections.Counter[str] = collections.Counter()
        self._pending_cities: collections.Counter[tuple[str, str]] = collections.Counter()
        self._local_keys: collections.Counter[str] = collections.Counter()
        self._local_cities: collections.Counter[tuple[str, str]] = collections.Counter()
        self._names: dict[str, str] = {}  # a query's city -> the name it is counted under

    def _roll(self) -> None:
        now = self.clock()
        if now < self._day_ends:
            return
        self._fold()  # what was counted before midnight belongs to the day that ended
        self._day_ends = _next_midnight(now)
        day = today(now)
        if day != self._day:
            self._day = day
            self._local_keys.clear()
            self._local_cities.clear()

    def record(self, key_id: str, city: str | None) -> None:
        """Count one served request (cheap: one counter; the per-key and per-city counts come at a fold)."""
        if self.clock() >= self._day_ends:
            self._roll()
        self._hits[(key_id, city)] += 1
        if len(self._hits) >= MAX_PENDING:
            self._fold()

    def _fold(self) -> None:
        """Add the hits counted since the last fold to the per-key and per-city counters."""
        hits, self._hits = self._hits, collections.Counter()
        for (key_id, city), n in hits.items():
            self._local_keys[key_id] += n
            self._pending_keys[key_id] += n
            if not city:
                continue
            name = self._names.get(city)
            if name is None:
                if len(self._names) >= MAX_PENDING:
                    self._names.clear()
                name = self._names[city] = city.strip().title()
            if len(self._local_cities) < MAX_PENDING:
                self._local_cities[(key_id, name)] += n
            if len(self._pending_cities) < MAX_PENDING:
                self._pending_cities[(key_id, name)] += n

    async def flush(self) -> bool:
        """Push pending counts to Redis; kept for the next flush when Redis fails."""
        self._fold()
        if not self._pending_keys or not self.link.usable:
            return False
        assert self.link.client is not None
        keys, cities = self._pending_keys, self._pending_cities
        self._pending_keys, self._pending_cities = collections.Counter(), collections.Counter()
        day = self._day
        ttl = KEEP_DAYS * 86400
        requests_key = f"{PREFIX}{day}:requests"
        cities_key = f"{PREFIX}{day}:cities"
        pipe = self.link.client.pipeline(transaction=False)
        for key_id, n in keys.items():
            pipe.hincrby(requests_key, key_id, n)
        touched = set()
        for (key_id, city), n in cities.items():
            pipe.zincrby(cities_key, n, city)
            per_key = f"{PREFIX}{day}:cities:{key_id}"
            pipe.zincrby(per_key, n, city)
            touched.add(per_key)
        for name in touched:
            pipe.zremrangebyrank(name, 0, -(TOP_CITIES_PER_KEY + 1))
            pipe.expire(name, ttl)
        pipe.zremrangebyrank(cities_key, 0, -(TOP_CITIES + 1))
        pipe.expire(requests_key, ttl)
        pipe.expire(cities_key, ttl)
        try:
            await pipe.execute()
        except redis_link.ERRORS as exc:
            self.link.failed(exc)
            self._pending_keys.update(keys)
            if len(self._pending_cities) < MAX_PENDING:
                self._pending_cities.update(cities)
            return False
        self.link.ok()
        return True

    async def usage(self, key_id: str) -> dict[str, Any]:
        """Today's requests and top cities of a key: the fleet's when Redis answers, else this process's."""
        self._roll()
        self._fold()
        day = self._day
        if self.link.usable:
            assert self.link.client is not None
            try:
                pipe = self.link.client.pipeline(transaction=False)
                pipe.hget(f"{PREFIX}{day}:requests", key_id)
                pipe.zrevrange(f"{PREFIX}{day}:cities:{key_id}", 0, 9, withscores=True)
                raw_count, raw_cities = await pipe.execute()
            except redis_link.ERRORS as exc:
                self.link.failed(exc)
            else:
                count = int(raw_count or 0) + self._pending_keys.get(key_id, 0)
                top = [{"city": c.decode(), "requests": int(s)} for c, s in raw_cities]
                return {"day": day, "requests": count, "topCities": top, "scope": "fleet"}
        mine = [(city, n) for (k, city), n in self._local_cities.items() if k == key_id]
        mine.sort(key=lambda item: -item[1])
        return {
            "day": day,
            "requests": self._local_keys.get(key_id, 0),
            "topCities": [{"city": c, "requests": n} for c, n in mine[:10]],
            "scope": "process",
        }

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()
