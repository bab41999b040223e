"""Typed documents of the API: weather, usage, problem details, and what the headers say.

Field names are Python's (``temperature_c``); the JSON's are camelCase (``temperatureC``).
Fields the proxy adds later are ignored, so a newer proxy does not break an older client.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Literal, cast

CacheStatus = Literal["hit", "miss", "stale"]


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


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
            resets_at=datetime.datetime.fromisoformat(str(data["resetsAt"]).replace("Z", "+00:00")),
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
