"""Stale-while-revalidate over the tiered store: the read path of weather and geocoding.

``WeatherService`` is the one owner of the tier walk: a query (a city, or coordinates)
is answered with its location, weather entry and cache status by ``hit`` (a fresh
L1 answer, synchronous, no I/O) or ``resolve`` (everything else, awaited):

* fresh entry (L1, else L2): served as a hit;
* stale entry (past ``ttlSeconds``, within ``staleTtlSeconds``): served at once
  with ``stale`` set, and refreshed in the background (stale-while-revalidate);
  since a stale entry is always served, an unreachable upstream or an open
  breaker also gets stale data (stale-if-error);
* nothing servable: one upstream call per key per process (in-flight sharing)
  and per fleet (Redis lock), everyone else waits for its result. Should that
  call fail, L1's copy past its L1 lifetime (see ``store``) still stands in
  within its stale window (Redis back but empty while the upstream is down).

A key whose background refreshes keep failing is refreshed at most once per
backoff interval (``RefreshBackoff``), and the failures are logged once per
change of state, not once per stale answer: an upstream outage otherwise logs
(and calls upstream) at the request rate.

Background refreshes count as background calls of the upstream budget (they stop at its
``backgroundPercent``); a user's miss that joined one refused there makes its own call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson

from weather_proxy import config as config_mod
from weather_proxy.cache import coalesce, entries, store
from weather_proxy.observability import metrics as metrics_mod
from weather_proxy.upstream import budget
from weather_proxy.upstream import client as upstream

log = logging.getLogger(__name__)

T = TypeVar("T")
HIT, MISS, STALE = "hit", "miss", "stale"
NEGATIVE_GEO_TTL_SECONDS = 600.0
MAX_FLEET_WAIT_SECONDS = 10.0
REFRESH_BACKOFF_INITIAL_SECONDS = 1.0
REFRESH_BACKOFF_MAX_SECONDS = 30.0


class CityNotFound(Exception):
    """Open-Meteo knows no place by that name (and country)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """What a client asks for: a city (and optional country) or coordinates, already validated."""

    city: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclasses.dataclass(slots=True)
class Answer:
    """A query answered: where (``location`` None for coordinates), the weather and how it was served.

    ``formatted`` is for the HTTP layer: the response it made of this answer, reused while the
    answer is (its Age and max-age change once a second). The cache layer never reads it.
    """

    location: upstream.Location | None
    location_json: bytes  # the body's ``location`` object, serialized
    entry: entries.WeatherEntry
    status: str  # HIT, MISS or STALE
    formatted: Any = dataclasses.field(default=None, compare=False, repr=False)


def coordinates_json(lat: float, lon: float, entry: entries.WeatherEntry) -> bytes:
    """The ``location`` object of a coordinates query: no name, the entry's timezone."""
    return orjson.dumps(
        {
            "name": None,
            "country": None,
            "latitude": entries.rounded(lat),
            "longitude": entries.rounded(lon),
            "timezone": entry.timezone,
        }
    )


class RefreshBackoff:
    """Per key, when a background refresh may next run after failed ones: exponential, capped.

    Only keys whose refreshes failed are held, and at most ``max_keys`` of them (the oldest
    failure goes first), so the map stays within the size of the cache it serves.
    """

    def __init__(
        self,
        max_keys: int,
        initial: float = REFRESH_BACKOFF_INITIAL_SECONDS,
        maximum: float = REFRESH_BACKOFF_MAX_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_keys = max(1, max_keys)
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._held: dict[str, tuple[float, float]] = {}  # key -> (not before, the delay that set it)

    def __len__(self) -> int:
        return len(self._held)

    def due(self, key: str) -> bool:
        held = self._held.get(key)
        return held is None or self.clock() >= held[0]

    def delay(self, key: str) -> float | None:
        """The current delay of a held key (None: not held)."""
        held = self._held.get(key)
        return held[1] if held is not None else None

    def failed(self, key: str) -> None:
        held = self._held.pop(key, None)
        delay = self.initial if held is None else min(held[1] * 2, self.maximum)
        if len(self._held) >= self.max_keys:
            del self._held[next(iter(self._held))]
        self._held[key] = (self.clock() + delay, delay)

    def succeeded(self, key: str) -> None:
        self._held.pop(key, None)


class WeatherService:
    """Reads weather and geocoding through the caches, calling upstream only when needed."""

    def __init__(
        self,
        tiers: store.TieredStore,
        client: upstream.OpenMeteoClient,
        coalescer: coalesce.Coalescer,
        lock: coalesce.FleetLock,
        metrics: metrics_mod.Metrics,
        cache_config: Callable[[], config_mod.Cache],
        upstream_config: Callable[[], config_mod.Upstream],
    ) -> None:
        self.tiers = tiers
        # The store's clock (``TieredStore(clock=...)``): the deadlines compared here are the ones the
        # store's L1 expires items by, so both must read one clock (a test moves it, nobody sleeps).
        self.clock = tiers.clock
        self.client = client
        self.coalescer = coalescer
        self.lock = lock
        self.metrics = metrics
        self._cache = cache_config
        self._upstream = upstream_config
        self._background: set[asyncio.Task[None]] = set()
        # query -> (its last hit, valid until, the L1 generations it was read at). A dict bounded
        # by dropping its oldest entry: one C call per hit where cachetools' LRU makes five in
        # Python, and a dropped answer costs one L1 walk to make again.
        self._answers: dict[Query, tuple[Answer, float, tuple[int, int]]] = {}
        self._answers_max = max(1, self.tiers.geo_l1.maxsize)
        self.refresh_backoff = RefreshBackoff(int(self.tiers.weather_l1.maxsize))
        self._refreshes_failing = False

    # -- queries -------------------------------------------------------------------

    def hit(self, query: Query) -> Answer | None:
        """The answer from fresh L1 entries (counted as an L1 hit), without I/O; None: ``resolve`` it.

        Raises CityNotFound for a city whose geocoding miss is cached. The answer is kept
        for the next hit of the same query while both L1 tiers are unchanged (their
        generations) and none of its entries has expired or left L1.
        """
        now = self.clock()
        kept = self._answers.get(query)
        if kept is not None and now < kept[1] and kept[2] == self.tiers.generations():
            self.metrics.l1_hit.inc()
            return kept[0]
        until = math.inf
        location: upstream.Location | None = None
        if query.city is not None:
            item = self.tiers.geo_l1_item(entries.geo_key(query.city, query.country))
            if item is None or item[0].expires_at <= now or not self.tiers.trusted(item[1], now):
                return None
            geo = item[0]
            location = geo.location
            if location is None:
                raise CityNotFound(query.city)
            until = min(item[1], geo.expires_at)
            lat, lon = location.latitude, location.longitude
        else:
            assert query.lat is not None
            assert query.lon is not None
            lat, lon = query.lat, query.lon
        found = self.tiers.weather_l1_item(entries.weather_key(lat, lon))
        if found is None or now >= found[0].fresh_until or not self.tiers.trusted(found[1], now):
            return None
        entry = found[0]
        self.metrics.l1_hit.inc()
        location_json = geo.location_json if location is not None else coordinates_json(lat, lon, entry)
        answer = Answer(location, location_json, entry, HIT)
        # Trusted past its L1 lifetime (Redis down): kept with that lifetime, i.e. not reused, since
        # Redis may be back by the next request.
        answers = self._answers
        if len(answers) >= self._answers_max and query not in answers:
            del answers[next(iter(answers))]
        answers[query] = (answer, min(until, found[1], entry.fresh_until), self.tiers.generations())
        return answer

    async def resolve(
        self, query: Query, located: Callable[[upstream.Location], None] | None = None
    ) -> Answer:
        """The answer through every tier: L1, L2, stale, upstream (coalesced in-process and fleet-wide).

        ``located`` is told the place as soon as it is known (the usage history records it even
        when the weather then fails). Raises CityNotFound, UpstreamUnavailable, UpstreamRejected,
        BudgetExhausted.
        """
        location: upstream.Location | None = None
        if query.city is not None:
            geo = await self.locate(query.city, query.country)
            location = geo.location
            assert location is not None
            if located is not None:
                located(location)
            lat, lon = location.latitude, location.longitude
        else:
            assert query.lat is not None
            assert query.lon is not None
            lat, lon = query.lat, query.lon
        entry, status = await self.weather(lat, lon)
        location_json = geo.location_json if location is not None else coordinates_json(lat, lon, entry)
        return Answer(location, location_json, entry, status)

    # -- geocoding -----------------------------------------------------------------

    async def locate(self, name: str, country: str | None) -> entries.GeoEntry:
        """The geocoding entry of a city; raises CityNotFound, UpstreamUnavailable, UpstreamRejected."""
        entry = self.cached_location(name, country)
        if entry is None:
            key = entries.geo_key(name, country)
            # One L2 read and at most one upstream call per key in this process, however many wait.
            load = functools.partial(self._load_geo, key, name, country)
            entry = await _as_user_if_refused(lambda: self.coalescer.run("geo:" + key, load))
            if entry.location is None:
                raise CityNotFound(name)
        return entry

    def cached_location(self, name: str, country: str | None) -> entries.GeoEntry | None:
        """The L1 geocoding entry if unexpired, without I/O (raises CityNotFound for a cached miss)."""
        now = self.clock()
        entry = self.tiers.geo_l1_get(entries.geo_key(name, country), now)
        if entry is None or entry.expires_at <= now:
            return None
        if entry.location is None:
            raise CityNotFound(name)
        return entry

    async def _load_geo(self, key: str, name: str, country: str | None) -> entries.GeoEntry:
        shared = await self.tiers.geo_l2_get(key)
        if shared is not None:
            return shared
        last = self.tiers.geo_l1_last(key)
        if last is not None and last.expires_at <= self.clock():
            last = None
        if last is not None and not self.tiers.link.up:
            return last  # Redis went down during the read above: L1 is the only tier now
        try:
            return await self._fetch_geo(key, name, country)
        except upstream.UpstreamUnavailable:
            if last is None:
                raise
            return last

    async def _fetch_geo(self, key: str, name: str, country: str | None) -> entries.GeoEntry:
        lock_key = "geo:" + key
        lock_ttl = self._lock_ttl()
        token = await self.lock.acquire(lock_key, lock_ttl)
        if token is None:
            shared = await self.lock.wait_for(
                lambda: self.tiers.geo_l2_get(key),
                lambda e: e.expires_at > self.clock(),
                wait_seconds=min(lock_ttl, MAX_FLEET_WAIT_SECONDS),
            )
            if shared is not None:
                return shared
        try:
            if token:
                # Double-checked: the previous holder may have written the entry between our
                # read and our lock (it released the lock after writing).
                shared = await self.tiers.geo_l2_get(key)
                if shared is not None:
                    return shared
            location = await self.client.search(name.strip(), country)
            ttl = float(self._cache().geocoding_ttl_seconds)
            if location is None:
                ttl = min(ttl, NEGATIVE_GEO_TTL_SECONDS)
            entry = entries.GeoEntry(location, self.clock() + ttl)
            await self.tiers.geo_put(key, entry)
            return entry
        finally:
            if token:
                await self.lock.release(lock_key, token)

    # -- weather -------------------------------------------------------------------

    async def weather(self, latitude: float, longitude: float) -> tuple[entries.WeatherEntry, str]:
        """Current conditions at rounded coordinates and how they were served (hit|miss|stale)."""
        key = entries.weather_key(latitude, longitude)
        now = self.clock()
        m = self.metrics
        entry = self.tiers.weather_l1_get(key, now)
        if entry is not None and now < entry.fresh_until:
            m.l1_hit.inc()
            return entry, HIT
        return await self._weather_slow(key, latitude, longitude, now, entry)

    async def _weather_slow(
        self,
        key: str,
        latitude: float,
        longitude: float,
        now: float,
        entry: entries.WeatherEntry | None,
    ) -> tuple[entries.WeatherEntry, str]:
        m = self.metrics
        if entry is None:
            m.l1_miss.inc()
        else:
            m.l1_stale.inc()
        if self.tiers.link.configured:
            # Concurrent L1 misses of this process share one L2 read (and one pooled connection).
            shared = await self.coalescer.run(
                "wx-l2:" + key, lambda: self.tiers.weather_l2_get(key), counted=False
            )
            if shared is None:
                m.l2_miss.inc()
            elif now < shared.fresh_until:
                m.l2_hit.inc()
                self.tiers.weather_l1_put(key, shared, now)
                return shared, HIT
            else:
                m.l2_stale.inc()
                if entry is None or shared.fetched_at > entry.fetched_at:
                    entry = shared
                    self.tiers.weather_l1_put(key, shared, now)
            if entry is None and not self.tiers.link.up:
                # Redis went down during the read above: L1 is the only tier now.
                entry = self.tiers.weather_l1_get(key, now)
                if entry is not None and now < entry.fresh_until:
                    return entry, HIT
        if entry is not None and now < entry.stale_until:
            self.revalidate(latitude, longitude)
            return entry, STALE
        fetch = functools.partial(self._fetch_weather, key, latitude, longitude)
        try:
            fresh = await _as_user_if_refused(lambda: self.coalescer.run("wx:" + key, fetch))
        except upstream.UpstreamUnavailable:
            last = self.tiers.weather_l1_last(key)
            now = self.clock()
            if last is None or now >= last.stale_until:
                raise
            return last, HIT if now < last.fresh_until else STALE
        return fresh, MISS

    def revalidate(self, latitude: float, longitude: float) -> None:
        """Refresh an entry in the background unless one is in flight or the key's failures back off."""
        key = entries.weather_key(latitude, longitude)
        if self.coalescer.inflight("wx:" + key) or not self.refresh_backoff.due(key):
            return
        task = asyncio.get_running_loop().create_task(self._refresh(key, latitude, longitude))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh(self, key: str, latitude: float, longitude: float) -> None:
        try:
            with budget.background():
                await self.coalescer.run("wx:" + key, lambda: self._fetch_weather(key, latitude, longitude))
        except (upstream.UpstreamUnavailable, upstream.UpstreamRejected) as exc:
            self.metrics.background_refreshes.labels("failure").inc()
            self.refresh_backoff.failed(key)
            if self._refreshes_failing:
                log.debug("background refresh of %s failed: %s", key, exc)
            else:
                self._refreshes_failing = True
                log.warning(
                    "background refreshes are failing, stale data is served meanwhile "
                    "(logged again on recovery): %s failed: %s",
                    key,
                    exc,
                )
        else:
            self.metrics.background_refreshes.labels("success").inc()
            self._refreshed(key)

    def _refreshed(self, key: str) -> None:
        """The key has new data: no backoff for it, and a failing state ends (whichever path fetched)."""
        self.refresh_backoff.succeeded(key)
        if self._refreshes_failing:
            self._refreshes_failing = False
            log.info("background refreshes succeed again (%s refreshed)", key)

    async def refresh_if_due(self, latitude: float, longitude: float, margin: float) -> bool:
        """Refresh when the entry is missing or fresh for less than ``margin`` seconds (cache warming)."""
        key = entries.weather_key(latitude, longitude)
        now = self.clock()
        entry = self.tiers.weather_l1_get(key)
        if entry is None or entry.fresh_until - now < margin:
            shared = await self.tiers.weather_l2_get(key)
            if shared is not None and (entry is None or shared.fetched_at > entry.fetched_at):
                entry = shared
                self.tiers.weather_l1_put(key, shared, now)
        if entry is not None and entry.fresh_until - now >= margin:
            return False
        await self.coalescer.run("wx:" + key, lambda: self._fetch_weather(key, latitude, longitude, margin))
        return True

    def _lock_ttl(self) -> float:
        up = self._upstream()
        attempts = up.retries.attempts
        return up.timeout_seconds * attempts + up.retries.backoff_max_seconds * (attempts - 1) + 1.0

    async def _fetch_weather(
        self, key: str, latitude: float, longitude: float, margin: float = 0.0
    ) -> entries.WeatherEntry:
        lock_ttl = self._lock_ttl()
        token = await self.lock.acquire(key, lock_ttl)
        if token is None:
            # Another replica is fetching: wait for its entry, then call ourselves if it never comes.
            shared = await self.lock.wait_for(
                lambda: self.tiers.weather_l2_get(key),
                lambda e: e.fresh_until - self.clock() > margin,
                wait_seconds=min(lock_ttl, MAX_FLEET_WAIT_SECONDS),
            )
            if shared is not None:
                self.tiers.weather_l1_put(key, shared)
                return shared
        try:
            if token:
                shared = await self.tiers.weather_l2_get(key)  # double-checked, as for geocoding
                if shared is not None and shared.fresh_until - self.clock() > margin:
                    self.tiers.weather_l1_put(key, shared)
                    return shared
            current = await self.client.forecast(entries.rounded(latitude), entries.rounded(longitude))
            cfg = self._cache()
            entry = entries.WeatherEntry.from_current(
                current, self.clock(), cfg.ttl_seconds, cfg.stale_ttl_seconds
            )
            self._refreshed(key)
            await self.tiers.weather_put(key, entry)
            return entry
        finally:
            if token:
                await self.lock.release(key, token)

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)


async def _as_user_if_refused(run: Callable[[], Awaitable[T]]) -> T:
    """``run()``; once more if it joined a background call that the budget refused at its share.

    The refused call is over by then (its in-flight entry gone), so the second run makes the
    call as this user's, which the budget's remainder is kept for.
    """
    try:
        return await run()
    except upstream.BudgetExhausted as exc:
        if not exc.by_background or budget.origin.get() == budget.BACKGROUND:
            raise
    return await run()
