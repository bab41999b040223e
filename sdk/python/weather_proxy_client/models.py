"""Typed documents of the API: weather, usage and its history, analytics, problem details, headers.

Field names are Python's (``temperature_c``); the JSON's are camelCase (``temperatureC``).
Fields the proxy adds later are ignored, so a newer proxy does not break an older client.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, Literal, TypeVar, cast, overload

CacheStatus = Literal["hit", "miss", "stale"]
Granularity = Literal["day", "hour"]  # the length of a period of a series: a UTC day or hour
Row = TypeVar("Row")


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _utc(value: Any) -> datetime.datetime:
    """An RFC 3339 time in UTC (``2026-12-01T00:00:00Z``)."""
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """The ``RateLimit-*`` headers: the key's token bucket after this request."""

    limit: int  # RateLimit-Limit: the bucket's capacity
    remaining: int  # RateLimit-Remaining: whole tokens left
    reset_seconds: int  # RateLimit-Reset: seconds until the bucket is full

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit | None:
        """The numbers, or None on a response without them (anonymous callers, health routes)."""
        limit = _int_header(headers, "ratelimit-limit")
        remaining = _int_header(headers, "ratelimit-remaining")
        reset = _int_header(headers, "ratelimit-reset")
        if limit is None or remaining is None or reset is None:
            return None
        return cls(limit=limit, remaining=remaining, reset_seconds=reset)


@dataclasses.dataclass(frozen=True, slots=True)
class ResponseMeta:
    """What a response said besides its body."""

    status: int  # 200, or 304 when the client's copy was still current
    request_id: str | None  # X-Request-ID: quote it when reporting a problem
    etag: str | None
    rate_limit: RateLimit | None

    @property
    def not_modified(self) -> bool:
        """The proxy answered 304 and the body is the client's earlier copy (no transfer)."""
        return self.status == 304


@dataclasses.dataclass(frozen=True, slots=True)
class Location:
    name: str | None  # None for a query by coordinates
    country: str | None  # ISO 3166-1 alpha-2
    latitude: float
    longitude: float
    timezone: str | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Location:
        return cls(
            name=data.get("name"),
            country=data.get("country"),
            latitude=float(data["latitude"]),
            longitude=float(data["longitude"]),
            timezone=data.get("timezone"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Current:
    time: str  # ISO 8601 local time of the observation, 15-minute steps
    temperature_c: float | None
    wind_speed_kmh: float | None
    wind_direction_deg: float | None
    weather_code: int | None  # WMO weather code
    description: str
    is_day: bool | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Current:
        return cls(
            time=str(data["time"]),
            temperature_c=data.get("temperatureC"),
            wind_speed_kmh=data.get("windSpeedKmh"),
            wind_direction_deg=data.get("windDirectionDeg"),
            weather_code=data.get("weatherCode"),
            description=str(data.get("description", "")),
            is_day=data.get("isDay"),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class CacheInfo:
    status: CacheStatus
    age_seconds: int
    stale: bool

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CacheInfo:
        return cls(
            status=cast(CacheStatus, data["status"]),
            age_seconds=int(data["ageSeconds"]),
            stale=bool(data["stale"]),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Weather:
    """``GET /v1/weather``: current conditions at a place. Weather data by Open-Meteo.com (CC BY 4.0)."""

    location: Location
    current: Current
    cache: CacheInfo
    source: str
    meta: ResponseMeta

    @classmethod
    def from_json(cls, data: Mapping[str, Any], meta: ResponseMeta) -> Weather:
        return cls(
            location=Location.from_json(data["location"]),
            current=Current.from_json(data["current"]),
            cache=CacheInfo.from_json(data["cache"]),
            source=str(data["source"]),
            meta=meta,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Limit:
    requests_per_minute: int  # the sustained rate: tokens refilled per minute
    burst: int  # the bucket's capacity as configured (0 counts as 1)
    capacity: int  # tokens the bucket holds (RateLimit-Limit)
    window: int  # the most requests any 60 s may admit

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Limit:
        return cls(
            requests_per_minute=int(data["requestsPerMinute"]),
            burst=int(data["burst"]),
            capacity=int(data["capacity"]),
            window=int(data["window"]),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Quota:
    limit: int  # requests allowed in the UTC day or month
    used: int
    remaining: int
    resets_at: datetime.datetime  # the period's end (UTC)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Quota:
        return cls(
            limit=int(data["limit"]),
            used=int(data["used"]),
            remaining=int(data["remaining"]),
            resets_at=_utc(data["resetsAt"]),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Usage:
    """``GET /v1/usage``: the calling key's limit, what is left of it, and today's counts."""

    key_id: str
    limit: Limit
    remaining: int  # whole tokens left in the bucket
    reset_seconds: int  # until the bucket is full
    quota: Quota | None
    requests: Mapping[str, Any]  # today's requests and top cities, as the proxy reports them
    meta: ResponseMeta

    @classmethod
    def from_json(cls, data: Mapping[str, Any], meta: ResponseMeta) -> Usage:
        quota = data.get("quota")
        return cls(
            key_id=str(data["keyId"]),
            limit=Limit.from_json(data["limit"]),
            remaining=int(data["remaining"]),
            reset_seconds=int(data["resetSeconds"]),
            quota=Quota.from_json(quota) if quota else None,
            requests=dict(data.get("requests") or {}),
            meta=meta,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class DateRange:
    """Whole UTC days, ``first`` and ``last`` both included: the ``from`` and ``to`` of a query.

    The proxy answers at most 366 days and refuses ``last`` before ``first`` (:class:`errors.BadRequest`).
    """

    first: datetime.date
    last: datetime.date

    def __post_init__(self) -> None:
        for name in ("first", "last"):
            if isinstance(getattr(self, name), datetime.datetime):
                raise TypeError(f"{name}: a date, not a datetime (a range is of whole UTC days)")

    def params(self) -> dict[str, str]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}


@dataclasses.dataclass(frozen=True, slots=True)
class Listing(Generic[Row]):
    """An answer that is a list (the analytics routes): its ``items``, and ``meta``. Iterable, indexable."""

    items: tuple[Row, ...]
    meta: ResponseMeta

    def __iter__(self) -> Iterator[Row]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Row, ...]: ...
    def __getitem__(self, index: int | slice) -> Row | tuple[Row, ...]:
        return self.items[index]

    @staticmethod
    def parser(row: Callable[[Mapping[str, Any]], Row]) -> Callable[[Any, ResponseMeta], Listing[Row]]:
        """The parse function of a list of ``row``."""

        def parse(data: Any, meta: ResponseMeta) -> Listing[Row]:
            return Listing(items=tuple(row(item) for item in data), meta=meta)

        return parse


@dataclasses.dataclass(frozen=True, slots=True)
class UsagePeriod:
    start: datetime.datetime  # the UTC day or hour
    requests: int  # of the key in the period
    errors: int  # of which answered with a status of 400 or more
    cache_hits: int  # of which served fresh from the cache

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UsagePeriod:
        return cls(
            start=_utc(data["start"]),
            requests=int(data["requests"]),
            errors=int(data["errors"]),
            cache_hits=int(data["cacheHits"]),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class UsageHistory:
    """``GET /v1/usage?from=&to=&granularity=``: the calling key's counts per UTC day or hour."""

    key: str  # the key's id (namespace/name of the ApiKey)
    periods: tuple[UsagePeriod, ...]  # every period of the range, oldest first
    meta: ResponseMeta

    @classmethod
    def from_json(cls, data: Mapping[str, Any], meta: ResponseMeta) -> UsageHistory:
        return cls(
            key=str(data["key"]),
            periods=tuple(UsagePeriod.from_json(period) for period in data["periods"]),
            meta=meta,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class TopCity:
    """A row of ``GET /v1/analytics/top-cities``: a place by the geocoder's name and country."""

    name: str
    country: str | None  # ISO 3166-1 alpha-2
    requests: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TopCity:
        return cls(name=str(data["name"]), country=data.get("country"), requests=int(data["requests"]))


@dataclasses.dataclass(frozen=True, slots=True)
class CountryCount:
    """A row of ``GET /v1/analytics/countries``: weather requests for places in a country."""

    country: str  # ISO 3166-1 alpha-2
    requests: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CountryCount:
        return cls(country=str(data["country"]), requests=int(data["requests"]))


@dataclasses.dataclass(frozen=True, slots=True)
class PeakHour:
    """A row of ``GET /v1/analytics/peak-hours``: API requests in one UTC weekday and hour."""

    weekday: int  # Monday 0 ... Sunday 6
    hour: int  # 0-23, UTC
    requests: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PeakHour:
        return cls(weekday=int(data["weekday"]), hour=int(data["hour"]), requests=int(data["requests"]))


@dataclasses.dataclass(frozen=True, slots=True)
class CachePeriod:
    """A row of ``GET /v1/analytics/cache``: weather answers of a period by cache status."""

    start: datetime.datetime
    hits: int
    misses: int
    stale: int
    hit_ratio: float | None  # hits / (hits + misses + stale); None without answers

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CachePeriod:
        ratio = data.get("hitRatio")
        return cls(
            start=_utc(data["start"]),
            hits=int(data["hits"]),
            misses=int(data["misses"]),
            stale=int(data["stale"]),
            hit_ratio=None if ratio is None else float(ratio),
        )


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamPeriod:
    """A row of ``GET /v1/analytics/upstream``: calls to Open-Meteo in a period, per API."""

    start: datetime.datetime
    geocode: int  # calls to the geocoding API
    forecast: int  # calls to the forecast API

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UpstreamPeriod:
        return cls(start=_utc(data["start"]), geocode=int(data["geocode"]), forecast=int(data["forecast"]))


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457 problem document: the body of every error response."""

    type: str  # e.g. https://weatherproxy.dev/problems/rate-limited
    title: str
    status: int
    detail: str
    instance: str  # the request id

    @property
    def slug(self) -> str:
        """The last segment of ``type`` (``rate-limited``, ``quota-exceeded``, ...)."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], status: int) -> Problem:
        return cls(
            type=str(data.get("type", "about:blank")),
            title=str(data.get("title", "")),
            status=int(data.get("status", status)),
            detail=str(data.get("detail", "")),
            instance=str(data.get("instance", "")),
        )
