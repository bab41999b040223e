"""Response models for the OpenAPI document (the hit path serializes bytes, not these)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LocationOut(BaseModel):
    name: str | None = Field(description="Place name (null for coordinate queries).", examples=["Paris"])
    country: str | None = Field(description="ISO 3166-1 alpha-2 country code.", examples=["FR"])
    latitude: float = Field(examples=[48.8534])
    longitude: float = Field(examples=[2.3488])
    timezone: str | None = Field(examples=["Europe/Paris"])


class CurrentOut(BaseModel):
    time: str = Field(
        description="Observation time (ISO 8601, 15-minute steps).", examples=["2026-11-26T10:00"]
    )
    temperatureC: float | None = Field(examples=[7.4])
    windSpeedKmh: float | None = Field(examples=[11.2])
    windDirectionDeg: float | None = Field(examples=[230])
    weatherCode: int | None = Field(description="WMO weather code.", examples=[3])
    description: str = Field(examples=["Overcast"])
    isDay: bool | None = Field(examples=[True])


class CacheOut(BaseModel):
    status: str = Field(description="hit | miss | stale", examples=["hit"])
    ageSeconds: int = Field(examples=[42])
    stale: bool = Field(examples=[False])


class WeatherOut(BaseModel):
    location: LocationOut
    current: CurrentOut
    cache: CacheOut
    source: str = Field(
        description="Data source; weather data by Open-Meteo.com (CC BY 4.0).", examples=["open-meteo"]
    )


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(json_schema_extra={"description": "application/problem+json"})
    type: str = Field(examples=["https://weatherproxy.dev/problems/not-found"])
    title: str = Field(examples=["City not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No place named 'Atlantis'."])
    instance: str = Field(description="The request id.", examples=["3f2a0c1e9b7d4e3a8c1b2d3e4f5a6b7c"])


class LimitOut(BaseModel):
    requestsPerMinute: int = Field(description="Sustained rate: tokens refilled per minute.")
    burst: int = Field(description="The bucket's capacity as configured (0 counts as 1).")
    capacity: int = Field(description="Tokens the bucket holds (RateLimit-Limit).")
    window: int = Field(description="The most requests any 60 s may admit (rate + capacity).")


class QuotaOut(BaseModel):
    limit: int = Field(description="Requests allowed in the period.")
    used: int = Field(description="Requests counted in the period, fleet-wide when Redis answers.")
    remaining: int
    resetsAt: str = Field(
        description="End of the UTC day or month (RFC 3339).", examples=["2026-12-02T00:00:00Z"]
    )


class UsageOut(BaseModel):
    keyId: str = Field(examples=["weather/team-a"])
    limit: LimitOut
    remaining: int = Field(description="Whole tokens left in the bucket.")
    resetSeconds: int = Field(description="Seconds until the bucket is full.")
    quota: QuotaOut | None = Field(description="The key's quota, when it has one.")
    requests: dict[str, Any] = Field(
        description="Today's requests and top cities (fleet-wide when Redis answers).",
        examples=[{"day": "2026-11-26", "requests": 120, "topCities": [{"city": "Paris", "requests": 80}]}],
    )


class UsagePeriodOut(BaseModel):
    start: str = Field(
        description="Start of the UTC day or hour (RFC 3339).", examples=["2026-12-01T00:00:00Z"]
    )
    requests: int = Field(description="Requests of the key in the period.")
    errors: int = Field(description="Of which answered with a status of 400 or more.")
    cacheHits: int = Field(description="Of which served from the cache (fresh).")


class UsageHistoryOut(BaseModel):
    key: str = Field(description="The key's id (namespace/name of the ApiKey).", examples=["weather/team-a"])
    periods: list[UsagePeriodOut] = Field(description="Every period of the range, oldest first.")


class TopCityOut(BaseModel):
    name: str = Field(examples=["Paris"])
    country: str | None = Field(description="ISO 3166-1 alpha-2 code.", examples=["FR"])
    requests: int


class CountryOut(BaseModel):
    country: str = Field(description="ISO 3166-1 alpha-2 code of the place asked for.", examples=["FR"])
    requests: int


class PeakHourOut(BaseModel):
    weekday: int = Field(ge=0, le=6, description="UTC weekday, Monday 0.")
    hour: int = Field(ge=0, le=23, description="UTC hour.")
    requests: int


class CachePeriodOut(BaseModel):
    start: str = Field(examples=["2026-12-01T00:00:00Z"])
    hits: int
    misses: int
    stale: int
    hitRatio: float | None = Field(description="hits / (hits + misses + stale); null without answers.")


class UpstreamPeriodOut(BaseModel):
    start: str = Field(examples=["2026-12-01T00:00:00Z"])
    geocode: int = Field(description="Calls to Open-Meteo's geocoding API.")
    forecast: int = Field(description="Calls to Open-Meteo's forecast API.")


class ReadyOut(BaseModel):
    status: str = Field(description="ok | degraded | unavailable", examples=["ok"])
    checks: dict[str, Any]


def problem(description: str, example_status: int, example_title: str) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry for a problem document."""
    return {
        "model": Problem,
        "description": description,
        "content": {
            "application/problem+json": {
                "example": {
                    "type": "https://weatherproxy.dev/problems/...",
                    "title": example_title,
                    "status": example_status,
                    "detail": description,
                    "instance": "3f2a0c1e9b7d4e3a8c1b2d3e4f5a6b7c",
                }
            }
        },
    }
