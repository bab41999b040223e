"""What the caches hold: pre-serialized JSON fragments plus their lifetimes.

Bodies are assembled from bytes on the hit path (no pydantic, no dict dumps):
``location`` comes from the geocoding entry (or the coordinates), ``current``
from the weather entry, ``cache`` is formatted per request.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from weather_proxy.upstream import client as upstream


def weather_key(latitude: float, longitude: float) -> str:
    """Coordinates rounded to 0.01° (~1 km): city and lat/lon queries share entries."""
    return f"{latitude:.2f},{longitude:.2f}"


def rounded(value: float) -> float:
    return round(value, 2)


def geo_key(name: str, country: str | None) -> str:
    return f"{name.strip().casefold()}|{(country or '').upper()}"


@dataclasses.dataclass(frozen=True, slots=True)
class WeatherEntry:
    """Current conditions at rounded coordinates."""

    current_json: bytes  # the ``current`` object, serialized
    timezone: str | None
    fetched_at: float  # epoch seconds (shared across the fleet through Redis)
    fresh_until: float
    stale_until: float

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "current": orjson.Fragment(self.current_json),
                "timezone": self.timezone,
                "fetchedAt": self.fetched_at,
                "freshUntil": self.fresh_until,
                "staleUntil": self.stale_until,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> WeatherEntry:
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            current_json=orjson.dumps(data["current"]),
            timezone=data["timezone"],
            fetched_at=float(data["fetchedAt"]),
            fresh_until=float(data["freshUntil"]),
            stale_until=float(data["staleUntil"]),
        )

    @classmethod
    def from_current(
        cls, current: upstream.Current, now: float, ttl: float, stale_ttl: float
    ) -> WeatherEntry:
        return cls(
            current_json=orjson.dumps(current.to_json()),
            timezone=current.timezone,
            fetched_at=now,
            fresh_until=now + ttl,
            stale_until=now + ttl + stale_ttl,
        )


@dataclasses.dataclass(frozen=True, slots=True)
class GeoEntry:
    """A geocoding answer; ``location`` None caches a miss (unknown city)."""

    location: upstream.Location | None
    expires_at: float
    location_json: bytes = dataclasses.field(default=b"null", compare=False)

    def __post_init__(self) -> None:
        if self.location is not None:
            object.__setattr__(self, "location_json", orjson.dumps(self.location.to_json()))

    def encode(self) -> bytes:
        # The place's id travels with the shared entry (the usage history records it), not in the response.
        loc = {**self.location.to_json(), "id": self.location.id} if self.location else None
        return orjson.dumps({"location": loc, "expiresAt": self.expires_at})

    @classmethod
    def decode(cls, raw: bytes) -> GeoEntry:
        data: dict[str, Any] = orjson.loads(raw)
        loc = data["location"]
        return cls(upstream.Location.from_json(loc) if loc else None, float(data["expiresAt"]))
